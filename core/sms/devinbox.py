"""The developer SMS inbox (development mode only; 404 otherwise).

It lists the texts to and from each participant who has a phone number, and lets the
developer reply as a participant: the reply is posted to the real inbound webhook with
a valid ``X-Twilio-Signature``, exactly as Twilio would. With the console backend the
outbox is then dispatched at once, so the answer shows without waiting for the
scheduler.
"""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from wtforms import SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length

from core.access import signed_in
from core.extensions import db
from core.models import Participant
from core.sms import signatures
from core.sms.dispatch import dispatch
from core.sms.models import SmsMessage
from core.sms.statuses import meaning
from core.sms.views import bp

#: the number the console backend pretends to text from
DEV_FROM = "+15005550006"
DEV_ACCOUNT_SID = "AC" + "0" * 32


class DevReplyForm(FlaskForm):
    body = TextAreaField("Reply as this participant",
                         validators=[DataRequired(), Length(max=1600)])
    submit = SubmitField("Send reply")


class DevDispatchForm(FlaskForm):
    submit = SubmitField("Send due texts now")


def _development_only() -> None:
    if current_app.config.get("KINSHIP_ENV") != "development":
        abort(404)


@bp.route("/dev")
@signed_in
def dev_inbox():
    _development_only()
    participants = list(db.session.scalars(
        select(Participant)
        .where(or_(Participant.phone.is_not(None),
                   Participant.id.in_(select(SmsMessage.participant_id))))
        .order_by(Participant.study_code)))
    threads = {}
    for participant in participants:
        threads[participant.id] = list(db.session.scalars(
            select(SmsMessage).where(SmsMessage.participant_id == participant.id)
            .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc()).limit(30)))
    strangers = list(db.session.scalars(
        select(SmsMessage).where(SmsMessage.participant_id.is_(None))
        .order_by(SmsMessage.id.desc()).limit(20)))
    return render_template("core/sms/dev_inbox.html", participants=participants,
                           threads=threads, strangers=strangers,
                           forms={p.id: DevReplyForm(prefix=f"p{p.id}") for p in participants},
                           dispatch_form=DevDispatchForm(), meaning=meaning,
                           backend=current_app.config["SMS_BACKEND"])


@bp.route("/dev/<int:participant_id>/reply", methods=["POST"])
@signed_in
def dev_reply(participant_id: int):
    _development_only()
    participant = db.get_or_404(Participant, participant_id)
    form = DevReplyForm(prefix=f"p{participant_id}")
    if not form.validate_on_submit():
        flash("Write the reply first (at most 1,600 characters).", "error")
        return redirect(url_for("sms.dev_inbox", _anchor=f"p{participant_id}"))
    if not participant.phone:
        flash("This participant has no mobile number, so they cannot text.", "error")
        return redirect(url_for("sms.dev_inbox", _anchor=f"p{participant_id}"))
    status = post_as_twilio(participant.phone, form.body.data)
    if status == 200:
        flash("Reply received by the webhook.", "success")
        _dispatch_console()
    else:
        flash(f"The webhook answered {status}.", "error")
    return redirect(url_for("sms.dev_inbox", _anchor=f"p{participant_id}"))


@bp.route("/dev/dispatch", methods=["POST"])
@signed_in
def dev_dispatch():
    _development_only()
    if DevDispatchForm().validate_on_submit():
        report = _dispatch_console()
        flash(f"Dispatched: {report.get('sent', 0)} sent.", "success")
    return redirect(url_for("sms.dev_inbox"))


def post_as_twilio(phone: str, body: str) -> int:
    """POST a text from ``phone`` to the inbound webhook, signed as Twilio signs it."""
    path = url_for("sms.inbound")
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "SmsSid": "", "AccountSid":
              current_app.config.get("TWILIO_ACCOUNT_SID") or DEV_ACCOUNT_SID,
              "From": phone, "To": current_app.config.get("TWILIO_FROM") or DEV_FROM,
              "Body": body, "NumMedia": "0"}
    params["SmsSid"] = params["MessageSid"]
    signature = signatures.sign(signatures.public_url(path), params)
    # end this request's transaction first: on SQLite it holds the write lock
    db.session.commit()
    response = current_app.test_client().post(path, data=params,
                                              headers={signatures.HEADER: signature})
    return response.status_code


def _dispatch_console() -> dict:
    if current_app.config["SMS_BACKEND"] != "console":
        return {}
    return dispatch()

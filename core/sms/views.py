"""The ``sms`` blueprint: Twilio's webhooks and the developer SMS inbox.

The webhooks are public and CSRF-exempt (Twilio cannot carry a CSRF token): each
request is authenticated by its ``X-Twilio-Signature`` instead, checked against
``PUBLIC_URL``, and refused with 403 without a valid one.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request
from twilio.twiml.messaging_response import MessagingResponse

from core.access import public
from core.extensions import csrf, db
from core.sms import guard, signatures
from core.sms.callbacks import apply_status
from core.sms.inbound import process, store

log = logging.getLogger("kinship.sms.webhooks")

bp = Blueprint("sms", __name__, url_prefix="/sms")
bp.record_once(lambda state: guard.check(state.app))


def twiml(reply: str | None = None) -> Response:
    answer = MessagingResponse()
    if reply:
        answer.message(reply)
    return Response(str(answer), mimetype="text/xml")


def twilio_webhook(view):
    """Mark a view as Twilio's: CSRF-exempt, authenticated by ``X-Twilio-Signature``
    (refused with 403 without a valid one). ``view.signed_by`` lets the route tests know."""
    view.signed_by = "twilio"
    return csrf.exempt(view)


def _require_signature(kind: str) -> None:
    if not signatures.is_valid(request):
        missing = "missing" if not request.headers.get(signatures.HEADER) else "invalid"
        log.warning("%s webhook refused: %s signature", kind, missing)
        abort(403)


@bp.route("/twilio/inbound", methods=["POST"])
@public
@twilio_webhook
def inbound():
    _require_signature("inbound")
    try:
        message, new = store(request.form)
    except ValueError:
        abort(400)
    db.session.commit()  # stored before anything else happens
    if not new:
        log.info("sms %s in: duplicate webhook", message.id)
    process(message)
    db.session.commit()
    return twiml()


@bp.route("/twilio/status/<int:message_id>", methods=["POST"])
@public
@twilio_webhook
def status(message_id: int):
    _require_signature("status")
    apply_status(message_id, request.form)
    db.session.commit()
    return Response(status=204)


from core.sms import devinbox  # noqa: E402,F401 - the developer inbox routes

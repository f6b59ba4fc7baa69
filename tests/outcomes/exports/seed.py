"""A small study with something in every table, and words that must never leave in an
export: names, e-mails, phone numbers, post and reflection text, SMS bodies, staff notes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from core.events import ActivityEvent
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from core.sms.models import SmsMessage
from forum.models import Post
from moderation.care_models import CheckInTask, ModeratorMessage
from moderation.models import QueueItem, RiskAlert
from modules.models import JournalEntry
from outcomes import instruments, scoring
from outcomes.assessments.models import AssessmentResponse, ItemAnswer, Timepoint
from outcomes.models import AllocationSlot, Arm, StatusChange, Study, Withdrawal
from outcomes.prompts.models import PlannedPrompt, PromptReply, SmsProtocolVersion
from tests.factories import make_participant, make_staff
from tests.outcomes.trial import make_trial

#: randomisation of the first participant: Monday 2 March 2026, 12:00 UTC
R = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
NOW = R + 60 * DAY

PHONES = ("+447700900123", "+447700900456")
STAFF_EMAIL = "researcher@example.org"
NAMES = ("Quiet Harbour", "Calm River")
CODES = ("T-0001", "T-0002", "T-0003")
POST_TEXT = "lighthouse marmalade is how I feel"
POST_TITLE = "amber walrus evening"
REFLECTION = "cobalt giraffe reflection"
SMS_PROMPT = "How lonely today? velvet octopus"
SMS_REPLY = "7 tangerine submarine"
WITHDRAW_REASON = "Moved away: quartz pelican"
STATUS_REASON = "Phoned: juniper lantern"
CLINICAL_NOTE = "saffron kettle clinical note"
CHECKIN_NOTE = "pewter heron check-in note"
MESSAGE_BODY = "hello from indigo pancake"
REPLY_BODY = "thanks, mossy tuba"
#: a site name that a spreadsheet would run as a formula
FORMULA_SITE = '=HYPERLINK("http://evil.example","x")'

#: every string that must not appear anywhere in a bundle
FORBIDDEN = (*PHONES, "7700900123", "7700900456", STAFF_EMAIL, "example.org", *NAMES, *CODES,
             POST_TEXT, POST_TITLE, REFLECTION, SMS_PROMPT, SMS_REPLY, "tangerine",
             WITHDRAW_REASON, STATUS_REASON, CLINICAL_NOTE, CHECKIN_NOTE, MESSAGE_BODY,
             REPLY_BODY)


def _response(person: Participant, tp: Timepoint, answers: dict[int, int],
              submitted_at: datetime | None) -> None:
    instrument = instruments.get("ucla3")
    response = AssessmentResponse(participant_id=person.id, timepoint_id=tp.id,
                                  instrument="ucla3", started_at=submitted_at or R,
                                  submitted_at=submitted_at)
    db.session.add(response)
    db.session.flush()
    for item, value in answers.items():
        db.session.add(ItemAnswer(response_id=response.id, item=item, value=value,
                                  answered_at=submitted_at or R + 2 * DAY))
    if submitted_at is not None:
        result = scoring.score(instrument, answers)
        response.instrument_version = instrument.version
        response.total = float(result.total)
        response.score_status = result.status
        response.scoring_rule = scoring.describe_scoring(instrument)
        response.missing_rule = scoring.describe_missing(instrument)


def _arm(study: Study, code: str) -> Arm:
    return next(arm for arm in study.arms if arm.code == code)


def seed_study() -> dict[str, int]:
    """The study; returns ids: study, p1 (guided, active), p2 (self, withdrew from the
    study), p3 (invited only), researcher."""
    study = make_trial()
    researcher = make_staff(Role.RESEARCHER, STAFF_EMAIL)
    p1 = make_participant(study, CODES[0], name=NAMES[0], arm="guided")
    p2 = make_participant(study, CODES[1], name=NAMES[1], arm="self")
    p3 = make_participant(study, CODES[2], name=None)
    p1.phone, p1.site, p1.randomised_at, p1.status = PHONES[0], "North", R, "active"
    p2.phone, p2.site, p2.randomised_at, p2.status = PHONES[1], FORMULA_SITE, R + DAY, "withdrawn"
    for position, (person, arm, level) in enumerate(((p1, "guided", "high"),
                                                     (p2, "self", "low")), start=1):
        stratum = json.dumps({"site": person.site, "baseline_loneliness": level},
                             separators=(",", ":"))
        db.session.add(AllocationSlot(study_id=study.id, stratum=stratum, position=position,
                                      arm_id=_arm(study, arm).id, participant_id=person.id,
                                      assigned_at=person.randomised_at))
    db.session.add_all([
        StatusChange(participant_id=p1.id, from_status="consented", to_status="baseline_done",
                     at=R - 2 * DAY, reason=STATUS_REASON),
        StatusChange(participant_id=p2.id, from_status="active", to_status="withdrawn",
                     at=R + 11 * DAY, reason=STATUS_REASON),
        Withdrawal(participant_id=p2.id, kind="study", at=R + 10 * DAY, reason=WITHDRAW_REASON,
                   recorded_by_id=researcher.id),
    ])
    _seed_assessments(study, p1, p2)
    _seed_activity(p1, p2)
    _seed_sms(study, p1)
    _seed_moderation(p1)
    db.session.commit()
    return {"study": study.id, "p1": p1.id, "p2": p2.id, "p3": p3.id,
            "researcher": researcher.id}


def _seed_assessments(study: Study, p1: Participant, p2: Participant) -> None:
    baseline = Timepoint(study_id=study.id, key="baseline", label="Baseline", position=0,
                         instruments=["ucla3"], is_baseline=True)
    week6 = Timepoint(study_id=study.id, key="week6", label="Week 6", position=1,
                      instruments=["ucla3"], is_post_treatment=True, opens_day=42,
                      closes_day=56)
    db.session.add_all([baseline, week6])
    db.session.flush()
    _response(p1, baseline, {1: 2, 2: 3, 3: 1}, R - DAY)
    _response(p1, week6, {1: 1, 2: 1, 3: 2}, R + 43 * DAY)
    _response(p2, baseline, {1: 3}, None)


def _seed_activity(p1: Participant, p2: Participant) -> None:
    db.session.add_all([
        ActivityEvent(participant_id=p1.id, kind="login", at=R - DAY),
        ActivityEvent(participant_id=p1.id, kind="step_completed", at=R + DAY / 2,
                      detail={"note": "never exported"}),
        ActivityEvent(participant_id=p2.id, kind="login", at=R + 3 * DAY),
        Post(author_id=p1.user_id, title=POST_TITLE, body=POST_TEXT,
             body_html=f"<p>{POST_TEXT}</p>"),
        JournalEntry(participant_id=p1.id, body=REFLECTION),
    ])


def _seed_sms(study: Study, p1: Participant) -> None:
    protocol = SmsProtocolVersion(study_id=study.id, version=1, source="prompts: []", data={})
    sent = SmsMessage(direction="out", participant_id=p1.id, purpose="prompt", body=SMS_PROMPT,
                      phone=PHONES[0], status="delivered", sent_at=R + DAY)
    failed = SmsMessage(direction="out", participant_id=p1.id, purpose="prompt",
                        body=SMS_PROMPT, phone=PHONES[0], status="undelivered")
    reply = SmsMessage(direction="in", participant_id=p1.id, purpose="inbound", body=SMS_REPLY,
                       phone=PHONES[0], status="received")
    db.session.add_all([protocol, sent, failed, reply])
    db.session.flush()
    answered = PlannedPrompt(participant_id=p1.id, protocol_version_id=protocol.id,
                             prompt_key="lonely", slot=(R + DAY).date(), planned_at=R + DAY,
                             expires_at=R + DAY + timedelta(hours=3), message_id=sent.id,
                             answered_at=R + DAY + timedelta(minutes=2))
    expired = PlannedPrompt(participant_id=p1.id, protocol_version_id=protocol.id,
                            prompt_key="lonely", slot=(R + 2 * DAY).date(),
                            planned_at=R + 2 * DAY, expires_at=R + 2 * DAY + timedelta(hours=3),
                            message_id=failed.id, expired_at=R + 2 * DAY + timedelta(hours=3))
    db.session.add_all([answered, expired])
    db.session.flush()
    db.session.add(PromptReply(prompt_id=answered.id, participant_id=p1.id, prompt_key="lonely",
                               status="answered", value=7, score=7.0,
                               received_at=R + DAY + timedelta(minutes=2), latency_seconds=120,
                               inbound_message_id=reply.id, prompt_message_id=sent.id))


def _seed_moderation(p1: Participant) -> None:
    post = db.session.scalar(db.select(Post))
    clinician = make_staff(Role.CLINICIAN, "clinician@example.org")
    item = QueueItem(channel="forum_post", content_type="forum_post", content_id=post.id,
                     author_id=p1.user_id, participant_id=p1.id, action="flag",
                     category="self_harm", severity=3, is_risk=True, status="approved",
                     created_at=R + 3 * DAY, handled_at=R + 3 * DAY + timedelta(hours=2),
                     handled_by_id=clinician.id)
    db.session.add(item)
    db.session.flush()
    db.session.add(RiskAlert(item_id=item.id, channel="forum_post", content_type="forum_post",
                             content_id=post.id, author_id=p1.user_id, participant_id=p1.id,
                             category="self_harm", opened_at=R + 3 * DAY,
                             acknowledged_at=R + 3 * DAY + timedelta(minutes=30),
                             acknowledged_by_id=clinician.id, note=CLINICAL_NOTE,
                             actions_taken=["contacted_participant"],
                             possible_adverse_event=True))
    message = ModeratorMessage(participant_id=p1.id, sender_id=clinician.id,
                               direction="to_participant", body=MESSAGE_BODY,
                               created_at=R + 5 * DAY)
    db.session.add(message)
    db.session.add(ModeratorMessage(participant_id=p1.id, sender_id=p1.user_id,
                                    direction="from_participant", body=REPLY_BODY,
                                    created_at=R + 5 * DAY + timedelta(hours=1)))
    db.session.add(ModeratorMessage(participant_id=p1.id, sender_id=clinician.id,
                                    direction="to_participant", body=MESSAGE_BODY,
                                    created_at=R + 6 * DAY))
    db.session.flush()
    db.session.add(CheckInTask(participant_id=p1.id, moderator_id=clinician.id,
                               reason="inactive", detail={"days": 9}, status="done",
                               created_at=R + 4 * DAY, due_at=R + 6 * DAY,
                               completed_at=R + 5 * DAY, completed_by_id=clinician.id,
                               channel="in_app", outcome="reached", note=CHECKIN_NOTE,
                               message_id=message.id))
    db.session.add(CheckInTask(participant_id=p1.id, reason="manual", status="open",
                               open_key=f"{p1.id}:manual", created_at=R + 7 * DAY,
                               due_at=R + 9 * DAY))


def user_of(participant_id: int) -> User:
    return db.session.get(Participant, participant_id).user

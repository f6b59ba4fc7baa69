"""Moderation: screening and the review queue, risk alerts, caseloads, check-ins,
moderator messages, staff notes and content suggestions."""

from flask import Blueprint

bp = Blueprint("moderation", __name__, url_prefix="/moderation", template_folder="templates")

from moderation import care_models  # noqa: E402,F401,I001 - register the tables
from moderation import views  # noqa: E402,F401
from moderation import alert_views  # noqa: E402,F401
from moderation import rules_views  # noqa: E402,F401
from moderation import queue_views  # noqa: E402,F401
from moderation import message_views, note_views, suggest_views  # noqa: E402,F401
from moderation import staff_sms  # noqa: E402
from moderation import checkin_views  # noqa: E402,F401
from moderation import sms_inbox  # noqa: E402
from moderation.screening import screener  # noqa: E402

screener.register()
staff_sms.register()
sms_inbox.register()

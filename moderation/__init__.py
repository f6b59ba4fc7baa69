"""Moderation: caseloads and the staff view of a participant (more to come:
review queue, risk alerts, check-ins)."""

from flask import Blueprint

bp = Blueprint("moderation", __name__, url_prefix="/moderation", template_folder="templates")

from moderation import views  # noqa: E402,F401,I001
from moderation import alert_views  # noqa: E402,F401
from moderation import rules_views  # noqa: E402,F401
from moderation import queue_views  # noqa: E402,F401
from moderation.screening import screener  # noqa: E402

screener.register()

"""Moderation: caseloads and the staff view of a participant (more to come:
review queue, risk alerts, check-ins)."""

from flask import Blueprint

bp = Blueprint("moderation", __name__, url_prefix="/moderation", template_folder="templates")

from moderation import views  # noqa: E402,F401

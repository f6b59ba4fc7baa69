"""The trial: studies and arms, enrolment, the participant path, randomisation and the
researcher dashboard."""

from flask import Blueprint

bp = Blueprint("outcomes", __name__, url_prefix="/research", template_folder="templates")

from outcomes import views  # noqa: E402,F401

"""The trial: studies and arms, enrolment, the participant path, randomisation and the
researcher dashboard."""

from flask import Blueprint

bp = Blueprint("outcomes", __name__, url_prefix="/research", template_folder="templates")

import outcomes.exports_views  # noqa: E402,F401
import outcomes.report_views  # noqa: E402,F401
import outcomes.setup_views  # noqa: E402,F401
from outcomes import views  # noqa: E402,F401
from outcomes.assessments import views as assessment_views  # noqa: E402,F401
from outcomes.prompts import views as prompt_views  # noqa: E402,F401

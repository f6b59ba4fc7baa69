"""Therapy modules and gamified loneliness content: the content library, participants'
progress, quizzes, actions, reflections, the mood check, points, badges and levels."""

from flask import Blueprint

bp = Blueprint("modules", __name__, url_prefix="/modules", template_folder="templates")

from modules import views  # noqa: E402,F401

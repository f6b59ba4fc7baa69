"""Therapy modules and gamified loneliness content (issue: modules).

The blueprint is registered now so its URL space and templates are reserved;
its pages arrive with the content library.
"""

from flask import Blueprint

bp = Blueprint("modules", __name__, url_prefix="/modules", template_folder="templates")

"""The peer forum (issue: forum).

The blueprint is registered now so its URL space and templates are reserved;
its pages arrive with the forum itself.
"""

from flask import Blueprint

bp = Blueprint("forum", __name__, url_prefix="/forum", template_folder="templates")

"""The core blueprint: sign-in, invites, consent, account, admin and shared pages."""

from flask import Blueprint

bp = Blueprint("core", __name__, template_folder="../templates")

from core.views import account, admin, auth, notifications, pages  # noqa: E402,F401

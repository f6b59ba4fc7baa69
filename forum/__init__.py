"""The peer forum: a newsfeed of posts and talk-it-out threads, comments with one level
of replies, supportive reactions, helpful marks, edits, soft deletes and reports, all
behind screening (``core.screening``) and the arm's ``forum`` flag."""

from flask import Blueprint

bp = Blueprint("forum", __name__, url_prefix="/forum", template_folder="templates")

from forum import profile, views  # noqa: E402,F401

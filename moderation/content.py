"""Reading the screened content an item or alert points at, for staff pages.

Content stays in its own table (forum, journal, SMS inbox); this returns its text as
plain text (templates escape it) or None when it is gone or its package is not installed.
"""

from __future__ import annotations

from importlib import import_module

from core.extensions import db

#: content_type -> (module, model class, text attribute)
SOURCES = {
    "forum_post": ("forum.models", "Post", "body"),
    "forum_comment": ("forum.models", "Comment", "body"),
    "journal_entry": ("modules.models", "JournalEntry", "body"),
    "sms_message": ("core.sms", "SmsMessage", "body"),
    "moderator_message": ("moderation.care_models", "ModeratorMessage", "body"),
}


def text_of(content_type: str, content_id: int) -> str | None:
    source = SOURCES.get(content_type)
    if source is None:
        return None
    module_name, class_name, attribute = source
    try:
        model = getattr(import_module(module_name), class_name)
    except (ImportError, AttributeError):
        return None
    row = db.session.get(model, content_id)
    return getattr(row, attribute, None) if row is not None else None

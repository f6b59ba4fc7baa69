"""The activity-event kinds the forum records, registered at import.

Labels read as the moderator timeline shows them ("<participant> ..."). Events carry
ids only, never what was written.
"""

from __future__ import annotations

from core.events import register_kind

KINDS = {
    "post_written": "Wrote a forum post",
    "comment_written": "Commented in the forum",
    "reaction_given": "Reacted to a forum post",
    "helpful_marked": "Marked a suggestion that helped",
    "helpful_received": "Had a suggestion marked as helpful",
}

for _kind, _label in KINDS.items():
    register_kind(_kind, _label)

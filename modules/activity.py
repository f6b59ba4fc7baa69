"""The activity-event kinds the modules package records, registered at import.

``modules.services``, ``modules.gamification`` and ``modules.mood`` all import this,
so whichever a caller imports first, every kind is known before an event is written.
Labels read as the moderator timeline shows them ("<participant> ...").
"""

from __future__ import annotations

from core.events import register_kind

KINDS = {
    "step_completed": "Completed a step",
    "quiz_answered": "Answered a quiz",
    "quiz_passed": "Passed a quiz",
    "action_planned": "Planned a real-world step",
    "action_checked": "Said how a real-world step went",
    "reflection_written": "Wrote a reflection",
    "checkpoint_rated": "Rated how helpful a module was",
    "module_completed": "Finished a module",
    "mood_logged": "Logged their mood",
    "points_awarded": "Earned points",
    "badge_awarded": "Earned a badge",
    "level_reached": "Reached a new level",
}

for _kind, _label in KINDS.items():
    register_kind(_kind, _label)

"""The daily mood check: a 1-5 score with words and symbols, and an optional note.

Transaction contract: functions flush and never commit; the outermost caller commits.

One entry per participant per LOCAL day: the participant's own time zone decides what
"today" is, so a participant in Auckland and one in Los Angeles logging at the same
instant log for different days. Logging again the same day updates that day's entry.
Every log records a ``mood_logged`` event (the score, never the note); points are given
once per local day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.clock import utcnow
from core.events import record_event
from core.extensions import db
from core.models import Participant
from modules import activity  # noqa: F401 - registers the event kinds
from modules.errors import ModuleError
from modules.gamification import award_for_event
from modules.models import MoodEntry
from modules.progress import local_date

NOTE_MAX = 500


class MoodLevel(NamedTuple):
    score: int
    #: shown next to the symbol: pages never rely on the symbol or colour alone
    word: str
    #: a text symbol (emoji); mark it aria-hidden next to the word
    symbol: str


MOOD_SCALE: list[MoodLevel] = [
    MoodLevel(1, "Very low", "😞"),
    MoodLevel(2, "Low", "🙁"),
    MoodLevel(3, "Okay", "😐"),
    MoodLevel(4, "Good", "🙂"),
    MoodLevel(5, "Very good", "😄"),
]
MOOD_BY_SCORE = {level.score: level for level in MOOD_SCALE}


def log_mood(participant: Participant, score: int, note: str | None = None, *,
             at: datetime | None = None) -> MoodEntry:
    """Save today's mood (or update it if today already has one)."""
    score = _valid_score(score)
    note = _valid_note(note)
    at = at or utcnow()
    day = local_date(participant, at)
    entry = _entry_on(participant.id, day)
    updated = True
    if entry is None:
        entry, created = _insert(participant.id, day, score, note, at)
        updated = not created  # a concurrent request made today's row first
    if updated:
        entry.score, entry.note, entry.updated_at = score, note, at
        db.session.flush()
    record_event(participant, "mood_logged", at=at, score=score, local_date=day.isoformat(),
                 updated=updated, has_note=note is not None)
    award_for_event(participant, "mood_logged", day.isoformat(), at=at)
    return entry


def today_mood(participant: Participant) -> MoodEntry | None:
    return _entry_on(participant.id, local_date(participant))


def mood_history(participant: Participant, days: int = 30) -> list[MoodEntry]:
    """The entries of the last ``days`` local days (today included), oldest first."""
    today = local_date(participant)
    return list(db.session.scalars(
        select(MoodEntry)
        .where(MoodEntry.participant_id == participant.id,
               MoodEntry.local_date > today - timedelta(days=days),
               MoodEntry.local_date <= today)
        .order_by(MoodEntry.local_date)))


def _valid_score(score: Any) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or score not in MOOD_BY_SCORE:
        raise ModuleError("Choose how you feel, from 1 (very low) to 5 (very good).")
    return score


def _valid_note(note: str | None) -> str | None:
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ModuleError(f"Please keep your note to {NOTE_MAX} characters "
                          f"(it is {len(note)} now).")
    return note or None


def _entry_on(participant_id: int, day: date) -> MoodEntry | None:
    return db.session.scalar(select(MoodEntry).where(
        MoodEntry.participant_id == participant_id, MoodEntry.local_date == day))


def _insert(participant_id: int, day: date, score: int, note: str | None,
            at: datetime) -> tuple[MoodEntry, bool]:
    """Insert the day's entry; if another transaction just did, return that one."""
    entry = MoodEntry(participant_id=participant_id, local_date=day, score=score, note=note,
                      created_at=at, updated_at=at)
    try:
        with db.session.begin_nested():
            db.session.add(entry)
    except IntegrityError:
        existing = _entry_on(participant_id, day)
        assert existing is not None
        return existing, False
    return entry, True

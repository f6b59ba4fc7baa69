"""Content suggestions from the staff side: a moderator suggests a module, or one of its
steps, with a note; it shows on the participant's Today page ("Suggested for you",
``modules.services.suggestions_for``) and they are told in the app.

The suggestion itself is ``modules.services.suggest`` (which audits it); this module
adds what the moderation pages need around it: who may suggest to whom
(``moderation.services.can_view``, and never to someone who must not be contacted), the
module and step choices, refusals named by form field, the notification, the
"suggestion" timeline source (made, dismissed) and the "suggest" panel.

Transaction contract: :func:`make_suggestion` flushes and leaves the commit to its
caller; the rest only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from core import notifications
from core.extensions import db
from core.models import Participant, User
from core.roles import MODERATORS
from moderation.messages import contact_refusal, staff_name
from moderation.record import TimelineEntry
from moderation.services import can_view
from modules import services as module_services
from modules.models import ContentSuggestion, Module, Step
from outcomes.services import features_for

notifications.register_kind("suggestion", "A suggestion from your moderator",
                            "{count} new suggestions from your moderator")

NOT_SHOWN = ("Their study group does not include the therapy modules, so they would "
             "never see a suggestion.")


class SuggestError(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PermissionDenied(Exception):
    pass


@dataclass(frozen=True)
class LibraryModule:
    module: Module
    steps: list[Step]


def library() -> list[LibraryModule]:
    """Active modules in library order, each with its active steps (two queries)."""
    modules = list(db.session.scalars(
        select(Module).where(Module.is_active)
        .order_by(Module.pathway_id, Module.position, Module.title)))
    steps: dict[int, list[Step]] = {m.id: [] for m in modules}
    for step in db.session.scalars(
            select(Step).where(Step.is_active, Step.module_id.in_(list(steps)))
            .order_by(Step.position, Step.id)):
        steps[step.module_id].append(step)
    return [LibraryModule(m, steps[m.id]) for m in modules]


def refusal(participant: Participant) -> str | None:
    """Why nobody can suggest content to this participant now (a sentence), or None."""
    return contact_refusal(participant) or (
        None if features_for(participant.user).get("modules") else NOT_SHOWN)


def _authorise(participant: Participant, actor: User) -> None:
    if actor.role not in MODERATORS or not can_view(actor, participant):
        raise PermissionDenied("not on your caseload")


def _module(module_id: int | None) -> Module:
    module = db.session.get(Module, module_id) if module_id else None
    if module is None or not module.is_active:
        raise SuggestError("Choose a module from the library.", "module")
    return module


def _step(module: Module, step_id: int | None) -> Step | None:
    if not step_id:
        return None
    step = db.session.get(Step, step_id)
    if step is None or step.module_id != module.id or not step.is_active:
        raise SuggestError(f"That step is not part of “{module.title}”. Choose one of its "
                           "steps, or none to suggest the whole module.", "step")
    return step


def make_suggestion(participant: Participant, *, actor: User, module_id: int | None,
                    step_id: int | None = None, note: str = "") -> ContentSuggestion:
    """Suggest a module (or a step of it) to a participant and tell them."""
    _authorise(participant, actor)
    reason = refusal(participant)
    if reason is not None:
        raise SuggestError(reason)
    module = _module(module_id)
    step = _step(module, step_id)
    try:
        suggestion = module_services.suggest(participant, module, actor=actor, step=step,
                                             note=note or "")
    except module_services.ModuleError as exc:  # the note's length
        raise SuggestError(str(exc), "note") from exc
    title = step.title if step is not None else module.title
    notifications.notify(participant.user, kind="suggestion",
                         text=f"{staff_name(actor)} suggested “{title}” for you",
                         url="/modules/today", actor=actor, dedupe_key="suggestions")
    return suggestion


def suggestions_of(participant: Participant, *, since: datetime | None = None,
                   limit: int | None = None) -> list[ContentSuggestion]:
    """Every suggestion made to the participant (dismissed too), newest first."""
    query = (select(ContentSuggestion)
             .options(joinedload(ContentSuggestion.module), joinedload(ContentSuggestion.step))
             .where(ContentSuggestion.participant_id == participant.id))
    if since is not None:
        query = query.where(or_(ContentSuggestion.created_at >= since,
                                ContentSuggestion.dismissed_at >= since))
    query = query.order_by(ContentSuggestion.created_at.desc(), ContentSuggestion.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def _names(rows: list[ContentSuggestion]) -> dict[int, str]:
    ids = {row.suggested_by_id for row in rows}
    if not ids:
        return {}
    return {user.id: user.name for user in db.session.scalars(select(User).where(
        User.id.in_(ids)))}


def title_of(suggestion: ContentSuggestion) -> str:
    if suggestion.step is not None:
        return f"{suggestion.step.title} (from “{suggestion.module.title}”)"
    return suggestion.module.title


def timeline_source(participant: Participant, viewer: User,
                    since: datetime | None) -> list[TimelineEntry]:
    """The "suggestion" source: made, and dismissed by the participant."""
    if viewer.role not in MODERATORS or not can_view(viewer, participant):
        return []
    rows = suggestions_of(participant, since=since)
    names = _names(rows)
    entries = []
    for row in rows:
        title = title_of(row)
        if since is None or row.created_at >= since:
            entries.append(TimelineEntry(
                at=row.created_at, kind="suggestion",
                text=f"{names.get(row.suggested_by_id, 'A moderator')} suggested {title}",
                detail=(row.note,) if row.note else ()))
        if row.dismissed_at is not None and (since is None or row.dismissed_at >= since):
            entries.append(TimelineEntry(at=row.dismissed_at, kind="suggestion",
                                         text=f"Put aside the suggestion {title}"))
    return entries

"""Small factories that write module content rows directly, shaped like the sync output,
so service tests depend neither on the content library nor on the loader.

Call inside an app context; they flush (the test commits when it wants to).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event, func, select

from core.events import ActivityEvent
from core.extensions import db
from modules.models import Module, Pathway, Step

#: the usual shape of a module: a bit of everything
KINDS = ("read", "quiz", "action", "reflect", "checkpoint")


def quiz_data(*, pass_mark: float | None = None) -> dict[str, Any]:
    """Two questions: the first single-answer (option 1 right), the second
    "choose all that apply" (options 0 and 2 right)."""
    data: dict[str, Any] = {"questions": [
        {"text": "Is loneliness the same as being alone?",
         "options": [{"text": "Yes", "correct": False, "feedback_html": "<p>Not quite.</p>"},
                     {"text": "No", "correct": True, "feedback_html": "<p>Right.</p>"}]},
        {"text": "Which can help?",
         "options": [{"text": "A text", "correct": True, "feedback_html": "<p>Yes.</p>"},
                     {"text": "Hiding", "correct": False, "feedback_html": "<p>Hmm.</p>"},
                     {"text": "A walk", "correct": True, "feedback_html": "<p>Yes!</p>"}]},
    ]}
    if pass_mark is not None:
        data["pass_mark"] = pass_mark
    return data


def step_data(kind: str) -> dict[str, Any]:
    return {
        "quiz": quiz_data(),
        "action": {"prompt": "Send a message to an old friend.", "check_after_days": 3},
        "reflect": {"prompt": "Who did you feel close to this week?"},
        "checkpoint": {"question": "How helpful was this module for you?"},
    }.get(kind, {})


def make_pathway(key: str = "foundations", *, position: int = 0) -> Pathway:
    pathway = Pathway(key=key, title=key.replace("-", " ").title(), position=position)
    db.session.add(pathway)
    db.session.flush()
    return pathway


def make_module(key: str, *, title: str | None = None, pathway: Pathway | None = None,
                position: int = 0, unlock: dict[str, Any] | None = None, core: bool = True,
                kinds: tuple[str, ...] = KINDS, active: bool = True) -> Module:
    """A module with one step per entry of ``kinds``, keyed ``<module>-<n>``."""
    module = Module(key=key, title=title or key.replace("-", " ").capitalize(),
                    pathway_id=pathway.id if pathway else None, position=position,
                    unlock=unlock or {}, is_core=core, is_active=active, evidence=["cbt"])
    db.session.add(module)
    db.session.flush()
    for number, kind in enumerate(kinds, start=1):
        add_step(module, kind, key=f"{key}-{number}", position=number)
    return module


def add_step(module: Module, kind: str = "read", *, key: str | None = None,
             position: int | None = None, data: dict[str, Any] | None = None,
             active: bool = True) -> Step:
    position = position if position is not None else 100 + len(steps_of(module))
    step = Step(key=key or f"{module.key}-x{position}", module_id=module.id, position=position,
                kind=kind, title=f"{kind.title()} step {position}", body_html="<p>Hello.</p>",
                data=data if data is not None else step_data(kind), is_active=active)
    db.session.add(step)
    db.session.flush()
    db.session.expire(module, ["steps"])
    return step


def steps_of(module: Module) -> list[Step]:
    """The module's active steps in order."""
    return list(db.session.scalars(select(Step).where(Step.module_id == module.id, Step.is_active)
                                   .order_by(Step.position, Step.id)))


def step_of(module: Module, kind: str) -> Step:
    return next(step for step in steps_of(module) if step.kind == kind)


def kinds_of_events(participant_id: int) -> list[str]:
    return list(db.session.scalars(select(ActivityEvent.kind).where(
        ActivityEvent.participant_id == participant_id).order_by(ActivityEvent.id)))


def events_of(participant_id: int, kind: str) -> list[ActivityEvent]:
    return list(db.session.scalars(select(ActivityEvent).where(
        ActivityEvent.participant_id == participant_id, ActivityEvent.kind == kind)
        .order_by(ActivityEvent.id)))


def count_of(model: Any, *conditions: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model).where(*conditions)))


@contextlib.contextmanager
def count_queries() -> Iterator[list[str]]:
    """Collect the SQL statements sent to the database (transaction control left out)."""
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)

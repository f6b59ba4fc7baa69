"""The module catalogue: the active modules in library order, their pathways and their
active step totals, kept per process from one sync to the next.

**Invalidation.** Content changes only through ``modules.sync.sync_library`` (``flask
modules sync`` and the demo seed). Every sync that changes something, or that finds no
version stored, writes a new random *content version* to the ``modules_content_version``
row of ``site_setting`` in its own transaction (``bump_version``). Each request reads
that version with its session (a ``core.principal`` fact: no query of its own; one small
query outside a request or after the request has written). ``library(version)`` answers
from this process's snapshot only when the snapshot was loaded under that same version,
else it loads the catalogue (one query) and keeps it under the version. So every
gunicorn worker, the scheduler and the CLI each hold their own snapshot, and each sees a
sync at its next request, because the version it reads has changed. While no version is
stored (content written another way, as tests' factories do) nothing is kept: every call
loads. Content written outside ``sync_library`` after a version was stored is not seen
until the next sync.

**Sharing.** Snapshot rows are detached ORM objects that are never handed out: each
request gets its own copies through ``Session.merge(load=False)`` (no query), so lazy
relationships such as ``Module.steps`` still work and no object is shared between
threads or sessions.

Transaction contract: ``bump_version`` flushes and leaves the commit to its caller (the
sync's); everything else only reads.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, inspect, select
from sqlalchemy.orm import contains_eager, make_transient_to_detached

from core import principal
from core.extensions import db
from core.models import SiteSetting
from modules.models import Module, Pathway, Step

VERSION_KEY = "modules_content_version"


@dataclass(frozen=True)
class _Snapshot:
    version: str
    #: detached copies, pathways attached; merged into each request's session
    modules: tuple[Module, ...]
    totals: dict[int, int]


_snapshot: _Snapshot | None = None


def version_fact() -> Any:
    """The stored content version as a scalar subquery (a ``core.principal`` fact)."""
    return select(SiteSetting.value).where(SiteSetting.key == VERSION_KEY).scalar_subquery()


principal.register("modules_content_version", version_fact)


def current_version(user: Any) -> str | None:
    """The content version, as loaded with ``user``'s session (else one query); None
    while no sync has stored one."""
    value = principal.fact("modules_content_version", user, stored_version)
    return str(value) if value else None


def stored_version() -> str | None:
    """The content version in the database (one query)."""
    value = db.session.scalar(version_fact().element)
    return str(value) if value else None


def bump_version() -> str:
    """Store a new content version, so every process reloads its catalogue. Flushes."""
    value = uuid.uuid4().hex
    row = db.session.get(SiteSetting, VERSION_KEY)
    if row is None:
        db.session.add(SiteSetting(key=VERSION_KEY, value=value))
    else:
        row.value = value
    db.session.flush()
    return value


def library(version: str | None) -> tuple[list[Module], dict[int, int]]:
    """The active modules in library order (pathways loaded) and their active step
    totals (modules with none left out): no query when this process's snapshot has
    ``version``, else one."""
    global _snapshot
    snapshot = _snapshot
    if version is not None and snapshot is not None and snapshot.version == version:
        return ([db.session.merge(module, load=False) for module in snapshot.modules],
                dict(snapshot.totals))
    modules, totals = _load()
    if version is not None:
        _snapshot = _Snapshot(version, _detached(modules), totals)
    return modules, totals


@dataclass(frozen=True)
class StepInfo:
    """What pages show of a step without its body (a row of the snapshot)."""

    id: int
    key: str
    module_id: int
    kind: str
    title: str


_steps: tuple[str, dict[int, StepInfo]] | None = None


def steps(version: str | None) -> dict[int, StepInfo] | None:
    """The active steps by id, for ``version``: no query while this process holds
    them, else one; None while no version is stored (nothing is kept then)."""
    global _steps
    if version is None:
        return None
    held = _steps
    if held is None or held[0] != version:
        rows = db.session.execute(_steps_query()).all()
        held = _steps = (version, {row.id: StepInfo(*row) for row in rows})
    return held[1]


@functools.cache
def _steps_query() -> Select[Any]:
    return select(Step.id, Step.key, Step.module_id, Step.kind, Step.title).where(
        Step.is_active)


def forget() -> None:
    """Drop this process's snapshots (the next calls load)."""
    global _snapshot, _steps
    _snapshot = _steps = None


def _load() -> tuple[list[Module], dict[int, int]]:
    rows = db.session.execute(_library_query()).all()
    return [module for module, _ in rows], {module.id: count for module, count in rows if count}


@functools.cache
def _library_query() -> Select[Any]:
    """Built once and reused (no statement building or cache-key work per call)."""
    total = (select(func.count(Step.id)).where(Step.module_id == Module.id, Step.is_active)
             .correlate(Module).scalar_subquery())
    return (select(Module, total)
            .outerjoin(Pathway, Pathway.id == Module.pathway_id)
            .options(contains_eager(Module.pathway))
            .where(Module.is_active)
            .order_by(case((Module.pathway_id.is_(None), 1), else_=0), Pathway.position,
                      Pathway.id, Module.position, Module.key))


def _detached(modules: list[Module]) -> tuple[Module, ...]:
    """Detached copies of ``modules`` and their pathways (the loaded rows stay in the
    request's session untouched)."""
    pathways: dict[int, Pathway] = {}
    copies = []
    for module in modules:
        copy = _copy(module)
        if module.pathway is not None:
            if module.pathway.id not in pathways:
                pathways[module.pathway.id] = _copy(module.pathway)
            copy.pathway = pathways[module.pathway.id]
        copies.append(copy)
    for row in [*pathways.values(), *copies]:
        make_transient_to_detached(row)
    return tuple(copies)


def _copy(row: Any) -> Any:
    cls = type(row)
    return cls(**{attr.key: getattr(row, attr.key) for attr in inspect(cls).column_attrs})

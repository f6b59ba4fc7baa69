"""Site settings that admins edit: site name, crisis resources, study contact.

Values are JSON in ``site_setting``; ``get`` falls back to the defaults here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, type_coerce

from core import audit
from core.extensions import db
from core.models import SiteSetting, User

DEFAULTS: dict[str, Any] = {
    "site_name": "Kinship",
    "crisis_intro": (
        "If you are in danger or thinking about ending your life, please get help now. "
        "You do not have to wait for the study team."
    ),
    "crisis_resources": [
        {"name": "Emergency services", "phone": "999", "url": "",
         "detail": "If you or someone else is in immediate danger."},
        {"name": "Samaritans", "phone": "116 123", "url": "https://www.samaritans.org",
         "detail": "Free, any time, day or night, to talk about anything."},
        {"name": "Shout", "phone": "Text SHOUT to 85258", "url": "https://giveusashout.org",
         "detail": "Free, confidential text support, 24/7."},
        {"name": "NHS 111 (option 2 for mental health)", "phone": "111", "url": "https://111.nhs.uk",
         "detail": "Urgent mental health help in England."},
    ],
    "study_contact": "The study team: kinship-study@example.org, weekdays 9:00 to 17:00.",
}


def get(key: str) -> Any:
    row = db.session.get(SiteSetting, key)
    return row.value if row is not None else DEFAULTS[key]


def get_all() -> dict[str, Any]:
    return with_defaults(stored())


def stored() -> dict[str, Any]:
    """The settings an admin has set (one query). Only the keys of ``DEFAULTS``: other
    packages keep their own rows in the table (export pseudonym secrets, the module
    content version), which pages have no business loading."""
    return {row.key: row.value for row in db.session.scalars(
        select(SiteSetting).where(SiteSetting.key.in_(DEFAULTS)))}


def with_defaults(stored: dict[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULTS, **(stored or {})}


def stored_fact() -> Any:
    """Every stored setting as one JSON object, for ``core.principal`` to load with the
    session (so the layout's settings cost no query of their own)."""
    if db.engine.dialect.name == "postgresql":
        merged = func.json_object_agg(SiteSetting.key, SiteSetting.value)
    else:
        merged = func.json_group_object(SiteSetting.key, func.json(SiteSetting.value))
    return type_coerce(select(merged).where(SiteSetting.key.in_(DEFAULTS)).scalar_subquery(),
                       db.JSON)


def put(key: str, value: Any, *, actor: User) -> None:
    if key not in DEFAULTS:
        raise KeyError(f"unknown setting {key!r}")
    row = db.session.get(SiteSetting, key)
    if row is None:
        db.session.add(SiteSetting(key=key, value=value, updated_by_id=actor.id))
    else:
        row.value = value
        row.updated_by_id = actor.id
    audit.record("settings.changed", actor=actor, key=key)
    db.session.flush()

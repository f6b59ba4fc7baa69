"""Values every template can use: site name, navigation, demo flag."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, g, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from core import navigation, notifications, principal, settings


def site_settings() -> dict[str, Any]:
    """The settings for the layout: loaded with the session when signed in (no query of
    their own), else one query; once per request."""
    if "kinship_settings" not in g:
        try:
            g.kinship_settings = settings.with_defaults(
                principal.fact("site_settings", current_user, settings.stored))
        except SQLAlchemyError:  # the error page for "database down" still renders
            g.kinship_settings = dict(settings.DEFAULTS)
    return g.kinship_settings


def field_attrs(field: Any, *, hint: str | None = None, **given: str | None) -> dict[str, str]:
    """HTML attributes for a form field: its hint and error linked by aria-describedby,
    aria-invalid when it has an error, and only the attributes that have a value
    (WTForms would print a Python None as the text "None")."""
    described = " ".join(
        part for part, present in ((f"{field.id}-hint", hint), (f"{field.id}-error", field.errors))
        if present)
    attrs = {"aria-describedby": described, "aria-invalid": "true" if field.errors else None,
             **given}
    return {key: value for key, value in attrs.items() if value}


#: an id no row will have, put where a list's ids go in ``url_maker``
_URL_MARKER = 918273645546372819


def url_maker(endpoint: str, name: str, **values: Any) -> Callable[[int], str]:
    """A function of an integer id giving ``url_for(endpoint, **{name: id}, **values)``,
    for lists: ``url_for`` runs once, with a marker id, instead of once per row (twenty
    ``url_for`` calls cost more than the rest of a forum card)."""
    url = url_for(endpoint, **{name: _URL_MARKER}, **values)
    head, marker, tail = url.partition(str(_URL_MARKER))
    if not marker or str(_URL_MARKER) in tail:
        raise ValueError(f"url_maker: {endpoint}'s URL does not hold {name} once: {url}")
    return lambda value: f"{head}{int(value)}{tail}"


def unread_notifications() -> int:
    """The signed-in person's unread notifications, once per request: loaded with the
    session (``core.principal``), else one query; none for anonymous visitors."""
    if not current_user.is_authenticated:
        return 0
    if "kinship_unread" not in g:
        try:
            g.kinship_unread = principal.fact(
                "unread_notifications", current_user,
                lambda: notifications.unread_count(current_user))
        except SQLAlchemyError:  # the error page for "database down" still renders
            g.kinship_unread = 0
    return g.kinship_unread


def inject_globals() -> dict[str, Any]:
    return {
        "site": site_settings,
        "nav_items": lambda: navigation.items_for(current_user),
        "unread_notifications": unread_notifications,
        "demo_mode": current_app.config["KINSHIP_DEMO"],
    }


def localtime(value: datetime | None, tz: str | None = None, fmt: str = "%a %d %b, %H:%M") -> str:
    """Show an aware UTC time in a person's time zone (UTC for staff pages)."""
    if value is None:
        return ""
    try:
        zone = ZoneInfo(tz) if tz else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    text = value.astimezone(zone).strftime(fmt)
    return text + (" UTC" if zone is UTC else "")

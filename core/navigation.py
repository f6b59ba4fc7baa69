"""The navigation, per role. Domain packages add their entries at import time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.roles import ALL_ROLES, Role


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    roles: frozenset[Role]
    order: int = 50
    #: extra condition, e.g. the participant's arm has the forum
    visible: Callable[[Any], bool] | None = field(default=None, compare=False)
    #: a number shown next to the label, e.g. unread messages (0: nothing shown)
    count: Callable[[Any], int] | None = field(default=None, compare=False)


_items: list[NavItem] = []


def add(label: str, endpoint: str, roles: frozenset[Role] | set[Role] = ALL_ROLES, *,
        order: int = 50, visible: Callable[[Any], bool] | None = None,
        count: Callable[[Any], int] | None = None) -> None:
    if any(item.endpoint == endpoint for item in _items):
        return
    _items.append(NavItem(label, endpoint, frozenset(roles), order, visible, count))
    _items.sort(key=lambda item: item.order)


def items_for(user: Any) -> list[NavItem]:
    if not user.is_authenticated:
        return []
    return [item for item in _items
            if user.role in item.roles and (item.visible is None or item.visible(user))]


def is_visible(user: Any, endpoint: str) -> bool:
    """Whether ``user`` has the navigation entry for ``endpoint`` (core asks this instead
    of importing a domain package to learn what a participant's arm offers)."""
    return user.is_authenticated and any(
        item.endpoint == endpoint and user.role in item.roles
        and (item.visible is None or item.visible(user)) for item in _items)

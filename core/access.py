"""Route access policies.

Every view declares who may use it with exactly one of these decorators; the
declaration is kept on the view function as ``view.access`` so a test can walk
``app.url_map`` and fail on any route that has none.

- ``@public``: anyone, signed in or not (login, invite, crisis resources).
- ``@role_required(*roles)``: signed-in users with one of ``roles``. By default
  the gates apply too: staff who must use two-factor sign-in are sent to set it
  up or to enter a code, and participants are sent to (re-)consent when the
  consent text has changed. The handful of views that *are* those steps pass
  ``gates=False``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import abort, redirect, request, url_for
from flask_login import current_user

from core.roles import ALL_ROLES, Role

F = TypeVar("F", bound=Callable[..., Any])

PUBLIC = "public"

#: set by core.sessions and core.consent at start-up, to keep this module free of imports
_gates: list[Callable[[Any], str | None]] = []


def register_gate(gate: Callable[[Any], str | None]) -> None:
    """A gate returns an endpoint to redirect to, or None to let the request pass.
    Registering the same gate again (every ``create_app`` does) changes nothing."""
    if gate not in _gates:
        _gates.append(gate)


def public(view: F) -> F:
    view.access = PUBLIC  # type: ignore[attr-defined]
    return view


def role_required(*roles: Role | str, gates: bool = True) -> Callable[[F], F]:
    allowed = frozenset(Role(r) for r in roles) if roles else ALL_ROLES

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return redirect(url_for("core.login", next=_safe_next()))
            if gates:
                for gate in _gates:
                    endpoint = gate(current_user)
                    if endpoint is not None and endpoint != request.endpoint:
                        return redirect(url_for(endpoint))
            if current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        wrapper.access = allowed  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def signed_in(view: F) -> F:
    """Any signed-in role."""
    return role_required()(view)


def roles_of(view: Callable[..., Any]) -> frozenset[Role] | str | None:
    return getattr(view, "access", None)


def _safe_next() -> str:
    path = request.full_path if request.query_string else request.path
    return path if path.startswith("/") and not path.startswith("//") else "/"


def has_role(user: Any, roles: Iterable[Role]) -> bool:
    return bool(user.is_authenticated and user.role in set(roles))

"""The refusals of the check-in services, shared by its modules and caught by the views."""

from __future__ import annotations


class CheckInError(Exception):
    """A refused request, with the form field it belongs to (None: the page as a whole)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PermissionDenied(Exception):
    """The acting user may not do this (a peer outside their caseload, a wrong role)."""


class AlreadyClosed(CheckInError):
    """Someone completed or cancelled the task since this moderator loaded it; nothing was
    changed."""

"""The five roles and the groups that routes and services check against."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    PARTICIPANT = "participant"
    PEER_MODERATOR = "peer_moderator"
    CLINICIAN = "clinician"
    RESEARCHER = "researcher"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.PARTICIPANT: "Participant",
    Role.PEER_MODERATOR: "Peer moderator",
    Role.CLINICIAN: "Clinician",
    Role.RESEARCHER: "Researcher",
    Role.ADMIN: "Administrator",
}

ALL_ROLES = frozenset(Role)
STAFF = frozenset(Role) - {Role.PARTICIPANT}
MODERATORS = frozenset({Role.PEER_MODERATOR, Role.CLINICIAN})
#: roles that hold identifiable or clinical data and must use two-factor sign-in
MFA_REQUIRED = frozenset({Role.CLINICIAN, Role.RESEARCHER, Role.ADMIN})

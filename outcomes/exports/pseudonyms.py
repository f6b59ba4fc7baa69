"""Pseudonyms for exports: a keyed HMAC-SHA256 of the participant id with a per-study secret.

The secret is made on first use and kept in ``site_setting`` under ``export_key:<study id>``
(no page lists that key, and ``core.settings.put`` refuses it). The same participant gets
the same pseudonym in every export of the study; without the secret the pseudonym cannot be
linked back to the id. ``key_for`` flushes when it creates the secret; the caller commits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from core.extensions import db
from core.models import SiteSetting
from outcomes.models import Study

PREFIX = "P-"
#: hex digits kept: 48 bits, no collision to expect below millions of participants
LENGTH = 12


def setting_key(study: Study) -> str:
    return f"export_key:{study.id}"


def key_for(study: Study) -> bytes:
    """The study's pseudonym secret, created (and flushed) on first use."""
    row = db.session.get(SiteSetting, setting_key(study))
    if row is None:
        row = SiteSetting(key=setting_key(study), value=secrets.token_hex(32))
        db.session.add(row)
        db.session.flush()
    return bytes.fromhex(row.value)


def pseudonym(key: bytes, participant_id: int) -> str:
    """``P-`` and the first 12 hex digits of HMAC-SHA256(key, "participant:<id>")."""
    digest = hmac.new(key, f"participant:{participant_id}".encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:LENGTH]

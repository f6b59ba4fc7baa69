"""Fixtures shared by the message, note and suggestion tests (they ask for them by name)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core import clock
from tests.moderation.message_helpers import NOW, Cast, make_cast


@pytest.fixture
def frozen_clock() -> Iterator[None]:
    clock.set_time(NOW)
    yield
    clock.set_time(None)


@pytest.fixture
def cast(app) -> Cast:
    return make_cast(app)

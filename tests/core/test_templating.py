"""Template helpers: ``url_maker`` builds the same URLs as ``url_for``."""

from __future__ import annotations

import pytest
from flask import url_for

from core.templating import url_maker


@pytest.mark.parametrize(("endpoint", "name", "extra"), [
    ("forum.post", "post_id", {}),
    ("forum.react", "post_id", {}),
    ("moderation.participant", "participant_id", {}),
    ("forum.feed", "cursor", {"kind": "post"}),
])
def test_url_maker_matches_url_for(app, endpoint, name, extra):
    """For ids of any length, in the path or the query string."""
    with app.test_request_context("/"):
        url_of = url_maker(endpoint, name, **extra)
        for value in (0, 7, 42, 10**12):
            assert url_of(value) == url_for(endpoint, **{name: value}, **extra)


def test_url_maker_refuses_what_is_not_an_id(app):
    """Only integers go in: text that could break out of the URL is refused."""
    with app.test_request_context("/"):
        url_of = url_maker("forum.post", "post_id")
        with pytest.raises(ValueError):
            url_of('1"><script>')

"""Sorting and filtering the caseload: every sort key both ways, unknown keys, the band,
arm, "has" and text filters (SQL-looking input included) and the accessible sort headings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.events import record_event
from core.extensions import db
from core.models import Participant
from core.roles import Role
from outcomes.models import Arm, Study
from tests.factories import make_participant, make_staff, make_study
from tests.moderation.caseload_data import (
    add_alert,
    add_message,
    add_moods,
    add_prompt,
    add_task,
    complete_steps,
)
from tests.moderation.caseload_pages import caseload_rows
from tests.modules.content_rows import make_module, steps_of
from tests.pages import form_values

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_time(NOW)
    yield
    clock.set_time(None)


@pytest.fixture
def seeded(app) -> None:
    """Five people on peer@'s caseload, each different on every column::

        name  code    last     mood    sms    progress  arm      has
        Ann   P-0003  1 day    -2.0    100%   0 of 2    guided   alert
        Bob   P-0001  10 days  +1.0    50%    2 of 2    guided   check-in
        Cat   P-0002  never    -       -      1 of 2    guided   unread reply
        Dee   P-0004  3 days   0.0     0%     -         plain
        Éve   P-0005  40 days  -       -      0 of 2    (none)
    """
    with app.app_context():
        study = make_study()
        plain = Arm(study_id=study.id, code="plain", name="Plain", features={"sms": True})
        db.session.add(plain)
        db.session.commit()
        peer = make_staff(Role.PEER_MODERATOR, "peer@example.org", name="Kit")
        make_staff(Role.CLINICIAN, "clinician@example.org", name="Dr Patel")
        module = make_module("only", kinds=("read", "read"))
        people = {}
        for name, code, arm in (("Ann", "P-0003", "guided"), ("Bob", "P-0001", "guided"),
                                ("Cat", "P-0002", "guided"), ("Dee", "P-0004", None),
                                ("Éve", "P-0005", None)):
            people[name] = make_participant(study, code, name=name, moderator=peer, arm=arm)
        people["Dee"].arm_id = plain.id
        for name, days in (("Ann", 1), ("Bob", 10), ("Dee", 3), ("Éve", 40)):
            record_event(people[name], "login", at=NOW - timedelta(days=days))
        for name, (recent, previous) in {"Ann": (2, 4), "Bob": (4, 3), "Dee": (3, 3)}.items():
            add_moods(people[name], {TODAY: recent, TODAY - timedelta(days=8): previous}, at=NOW)
        for name, answered in (("Ann", [True]), ("Bob", [True, False]), ("Dee", [False])):
            for n, yes in enumerate(answered, start=1):
                add_prompt(people[name], NOW - timedelta(days=n), answered=yes)
        complete_steps(people["Bob"], steps_of(module), at=NOW)
        complete_steps(people["Cat"], steps_of(module)[:1], at=NOW)
        add_alert(people["Ann"], at=NOW)
        add_task(people["Bob"], due_at=NOW + timedelta(days=1))
        add_message(people["Cat"], people["Cat"].user, at=NOW)
        db.session.commit()


def names(client, query: str = "") -> list[str]:
    response = client.get(f"/moderation/{query}")
    assert response.status_code == 200
    return [row.name for row in caseload_rows(response.data)]


@pytest.mark.parametrize(("sort", "ascending", "descending"), [
    # never active is the quietest of all
    ("last", ["Cat", "Éve", "Bob", "Dee", "Ann"], ["Ann", "Dee", "Bob", "Éve", "Cat"]),
    ("name", ["Ann", "Bob", "Cat", "Dee", "Éve"], ["Éve", "Dee", "Cat", "Bob", "Ann"]),
    # biggest drop first; no moods last either way
    ("mood", ["Ann", "Dee", "Bob", "Cat", "Éve"], ["Bob", "Dee", "Ann", "Cat", "Éve"]),
    # lowest rate first; no prompts last either way
    ("sms", ["Dee", "Bob", "Ann", "Cat", "Éve"], ["Ann", "Bob", "Dee", "Cat", "Éve"]),
    # no modules last either way; a tie (Ann, Éve: 0 %) keeps study-code order
    ("progress", ["Ann", "Éve", "Cat", "Bob", "Dee"], ["Bob", "Cat", "Ann", "Éve", "Dee"]),
])
def test_each_sort_key_both_ways(seeded, client, auth, sort, ascending, descending):
    """It sorts by the chosen figure, either way; rows without the figure stay last."""
    auth.login("peer@example.org")
    assert names(client, f"?sort={sort}") == ascending
    assert names(client, f"?sort={sort}&dir=asc") == ascending
    assert names(client, f"?sort={sort}&dir=desc") == descending


@pytest.mark.parametrize("query", ["", "?sort=nonsense", "?sort=last;DROP TABLE participant",
                                   "?sort=&dir=sideways", "?sort=__class__"])
def test_unknown_sort_keys_fall_back_to_quietest_first(seeded, client, auth, query):
    """It ignores a sort key or direction it does not know."""
    auth.login("peer@example.org")
    assert names(client, query) == ["Cat", "Éve", "Bob", "Dee", "Ann"]


def test_sort_headings_are_links_with_aria_sort(seeded, client, auth):
    """It marks the sorted column with aria-sort and links each heading to its sort, the
    sorted one to the other direction, keeping the filters."""
    auth.login("peer@example.org")
    page = client.get("/moderation/?sort=mood&band=amber").get_data(as_text=True)
    headings = re.findall(r"<th scope=\"col\"([^>]*)>\s*<a href=\"([^\"]+)\">([^<]+)", page)
    by_label = {label.strip(): (attrs, href.replace("&amp;", "&"))
                for attrs, href, label in headings}
    assert by_label["Mood trend"][0] == ' aria-sort="ascending"'
    assert "sort=mood" in by_label["Mood trend"][1] and "dir=desc" in by_label["Mood trend"][1]
    assert by_label["Last active"][0] == ""
    assert "band=amber" in by_label["Name" if "Name" in by_label else "Participant"][1]
    assert page.count("aria-sort=") == 1
    flipped = client.get("/moderation/?sort=mood&dir=desc").get_data(as_text=True)
    assert 'aria-sort="descending"' in flipped


@pytest.mark.parametrize(("query", "expected"), [
    ("?band=green", ["Ann"]),
    ("?band=amber", ["Dee"]),
    ("?band=red", ["Bob"]),
    ("?band=grey", ["Cat", "Éve"]),
    ("?arm=guided", ["Cat", "Bob", "Ann"]),
    ("?arm=plain", ["Dee"]),
    ("?arm=none", ["Éve"]),
    ("?arm=no-such-arm", ["Cat", "Éve", "Bob", "Dee", "Ann"]),
    ("?has=alerts", ["Ann"]),
    ("?has=checkins", ["Bob"]),
    ("?has=unread", ["Cat"]),
    ("?has=everything", ["Cat", "Éve", "Bob", "Dee", "Ann"]),
    ("?arm=guided&band=green", ["Ann"]),
    ("?arm=guided&has=unread&sort=name", ["Cat"]),
])
def test_filters(seeded, client, auth, query, expected):
    """It keeps the rows of the chosen band, arm and open work; unknown values are ignored."""
    auth.login("peer@example.org")
    assert names(client, query) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("ann", ["Ann"]),
    ("  BOB ", ["Bob"]),
    ("eve", ["Éve"]),                  # accents do not matter
    ("p-0004", ["Dee"]),               # study codes, any case
    ("P-000", ["Cat", "Éve", "Bob", "Dee", "Ann"]),
    ("%", []),                         # LIKE wildcards are taken literally
    ("_", []),
    ("' OR '1'='1", []),
    ("Ann'; DROP TABLE participant; --", []),
    ("\\", []),
])
def test_text_search_on_name_and_code(seeded, app, client, auth, q, expected):
    """It finds people by a part of their name or study code; SQL-looking input is only
    text (and the tables are still there afterwards)."""
    auth.login("peer@example.org")
    response = client.get("/moderation/", query_string={"q": q})
    assert [row.name for row in caseload_rows(response.data)] == expected
    assert form_values(response.data)["q"] == " ".join(q.split())
    with app.app_context():
        assert len(db.session.scalars(select(Participant)).all()) == 5


def test_nobody_matching_says_so_and_offers_to_clear(seeded, client, auth):
    auth.login("peer@example.org")
    page = client.get("/moderation/?q=zzz&sort=name").get_data(as_text=True)
    assert "Nobody matches these filters." in page
    assert "0 people shown (filtered from 5)." in page
    assert 'href="/moderation/?sort=name">Clear filters' in page


def test_the_filter_form_keeps_what_was_chosen(seeded, client, auth):
    """It shows the chosen filters and sort in the form, so filtering again keeps them."""
    auth.login("peer@example.org")
    page = client.get("/moderation/?q=a&band=red&arm=guided&has=checkins&sort=sms&dir=desc")
    values = form_values(page.data)
    values.pop("csrf_token")  # the sign-out form's
    assert values == {"q": "a", "band": "red", "arm": "guided",
                                      "has": "checkins", "sort": "sms", "dir": "desc"}


def test_a_clinician_filters_everyone(seeded, app, client, auth):
    """It applies the filters to everyone's participants for a clinician with ``all=1``."""
    with app.app_context():
        study = db.session.scalar(select(Study))
        make_participant(study, "X-0001", name="Annika")  # nobody's caseload
    auth.login("clinician@example.org")
    assert names(client, "?all=1&q=ann&sort=name") == ["Ann", "Annika"]
    assert names(client, "?q=ann") == []
    page = client.get("/moderation/?all=1&q=ann").get_data(as_text=True)
    assert '<input type="hidden" name="all" value="1">' in page

"""Object-level access, driven from ``app.url_map``: every route a role may use is called
with the ids of participant B's objects (journal reflection, moderator messages,
questionnaire answers, notifications, SMS answers, held forum content, check-in task,
clinician-only queue item and risk alert, action plan, suggestion), and

- participant A gets 403/404 on each of them, sees none of B's marker texts on any page,
  and changes nothing of B's (GET and POST);
- a peer moderator whose caseload B is not on gets 403/404 on B's participant pages and
  tasks and sees none of B's private texts anywhere;
- B's own peer moderator never sees clinician-only data (the clinician-only note, the
  journal reflection behind the clinician-only queue item, the risk alert);
- a researcher sees no moderation content on any page they may open.

Positive controls (B and a clinician do see the markers) keep the checks from passing
because the markers never render at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask, url_for

from core.access import PUBLIC, roles_of
from core.roles import Role
from tests.core.routes import url_values
from tests.security.cast import MARKERS, PRIVATE, make_cast, row_counts, rows_state, sign_in

#: the developer SMS inbox shows every participant's texts to anyone signed in, on
#: purpose, and only while KINSHIP_ENV=development (404 otherwise; tests/core/sms)
DEV_ONLY = {"sms.dev_inbox", "sms.dev_reply", "sms.dev_dispatch"}
SKIP = {"static", "core.logout", "core.mfa_verify", "core.mfa_setup", *DEV_ONLY}


@dataclass(frozen=True)
class Probe:
    """Who probes, which of B's URL values must be refused, and which markers they must
    never see."""

    who: str
    role: Role
    refused_args: frozenset[str]
    hidden: tuple[str, ...]
    only_prefix: str = ""


PROBES = {
    "participant A": Probe("participant", Role.PARTICIPANT,
                           frozenset({"post_id", "comment_id", "notification_id", "plan_id",
                                      "suggestion_id", "response_id"}),
                           tuple(MARKERS)),
    "peer off B's caseload": Probe("peer_moderator", Role.PEER_MODERATOR,
                                   frozenset({"participant_id", "task_id", "item_id"}),
                                   (*PRIVATE, "clinician_note")),
    "B's own peer": Probe("peer_b", Role.PEER_MODERATOR, frozenset({"item_id", "alert_id"}),
                          ("clinician_note", "journal")),
    "researcher on moderation pages": Probe("researcher", Role.RESEARCHER, frozenset(),
                                            PRIVATE, only_prefix="moderation."),
    "researcher anywhere": Probe("researcher", Role.RESEARCHER, frozenset(),
                                 ("journal", "message", "note", "clinician_note",
                                  "notification")),
}


def _requests(app: Flask, probe: Probe, values: dict) -> list[tuple[str, str, str, bool]]:
    """(endpoint, method, path, must_refuse) for every route the probe's role may use."""
    result = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            policy = roles_of(app.view_functions[rule.endpoint])
            if (rule.endpoint in SKIP or not rule.endpoint.startswith(probe.only_prefix)
                    or policy == PUBLIC or probe.role not in policy):
                continue
            path = url_for(rule.endpoint, **url_values(rule, values))
            refuse = bool(rule.arguments & probe.refused_args)
            for method in sorted(rule.methods & {"GET", "POST"}):
                if method == "POST" and not refuse:
                    continue  # staff may act on B where allowed (their own tests)
                result.append((rule.endpoint, method, path, refuse))
    return result


def _problems(client, probe: Probe, requests) -> list[str]:
    failures = []
    for endpoint, method, path, refuse in requests:
        response = client.open(path, method=method)
        body = response.get_data(as_text=True)
        seen = [name for name in probe.hidden if MARKERS[name] in body]
        if response.status_code >= 500:
            failures.append(f"{method} {path}: {response.status_code}")
        if seen:
            failures.append(f"{method} {path} ({endpoint}) shows B's {seen}")
        if refuse and response.status_code not in (403, 404):
            failures.append(f"{method} {path} ({endpoint}): expected 403/404, "
                            f"got {response.status_code}")
    return failures


@pytest.mark.parametrize("name", list(PROBES))
def test_nobody_reaches_someone_elses_objects(app, name):
    probe = PROBES[name]
    with app.app_context():
        cast = make_cast()
    client = sign_in(app, probe.who)
    with app.app_context():
        before = (row_counts(), rows_state(cast.b_rows))
    requests = _requests(app, probe, cast.b_values)
    assert len(requests) >= 3
    assert any(refuse for *_, refuse in requests) or not probe.refused_args
    failures = _problems(client, probe, requests)
    assert failures == [], f"{name}:\n" + "\n".join(failures)
    with app.app_context():
        assert (row_counts(), rows_state(cast.b_rows)) == before


def test_participant_a_cannot_post_to_bs_objects_even_with_form_data(app):
    """Forged form data on B's objects (comment on B's held post, edit it, answer B's
    questionnaire, check B's action plan) changes nothing."""
    with app.app_context():
        cast = make_cast()
    client = sign_in(app, "participant")
    v = cast.b_values
    posts = {
        f"/forum/posts/{v['post_id']}/comments": {"body": "sneaky"},
        f"/forum/posts/{v['post_id']}/edit": {"body": "sneaky", "title": "x"},
        f"/forum/comments/{v['comment_id']}/edit": {"body": "sneaky"},
        f"/forum/posts/{v['post_id']}/react": {"kind": "me_too"},
        f"/questionnaires/{v['response_id']}/question/1": {"answer": "0", "value": "0"},
        f"/questionnaires/{v['response_id']}/submit": {},
        f"/modules/actions/{v['plan_id']}/check": {"tried": "yes", "rating": "3"},
        f"/modules/suggestions/{v['suggestion_id']}/dismiss": {},
        f"/notifications/{v['notification_id']}/open": {},
    }
    with app.app_context():
        before = (row_counts(), rows_state(cast.b_rows))
    statuses = {path: client.post(path, data=data).status_code for path, data in posts.items()}
    assert all(code in (403, 404) for code in statuses.values()), statuses
    with app.app_context():
        assert (row_counts(), rows_state(cast.b_rows)) == before


def test_the_markers_do_show_to_those_allowed(app):
    """Positive control: B sees their notification and messages, B's peer the ordinary
    note, and a clinician the clinician-only note and the journal reflection."""
    with app.app_context():
        cast = make_cast()
    b = sign_in(app, "participant_b")
    assert MARKERS["notification"] in b.get("/notifications").get_data(as_text=True)
    assert MARKERS["message"] in b.get("/messages").get_data(as_text=True)
    peer = sign_in(app, "peer_b")
    page = peer.get(f"/moderation/participants/{cast.b_id}/notes").get_data(as_text=True)
    assert MARKERS["note"] in page
    assert MARKERS["clinician_note"] not in page
    clinician = sign_in(app, "clinician")
    page = clinician.get(f"/moderation/participants/{cast.b_id}/notes").get_data(as_text=True)
    assert MARKERS["clinician_note"] in page
    item = clinician.get(f"/moderation/queue/{cast.b_values['item_id']}")
    assert item.status_code == 200
    assert MARKERS["journal"] in item.get_data(as_text=True)

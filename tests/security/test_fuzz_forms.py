"""Property-based fuzzing (hypothesis) of every form: each POST route in ``app.url_map``
gets generated values for the fields its form shows (found by reading every page the
poster can open), with a valid CSRF token. It never answers 500, and an answer that
refuses (4xx, or the form shown again with 200) leaves every table's row count as it was.
"""

from __future__ import annotations

import pytest
from flask import Flask, url_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.access import PUBLIC, roles_of
from core.roles import Role
from tests.core.routes import url_values
from tests.security.cast import make_cast, row_counts, sign_in
from tests.security.forms import csrf_token, forms_on

#: routes left out: they sign the poster out or end the session's set-up steps, or
#: disable the accounts the other posts need (their own tests cover them)
SKIP = {"core.logout", "core.mfa_verify", "core.mfa_setup", "core.mfa_disable",
        "core.reconsent", "core.password", "core.admin_user_action", "core.admin_user"}
#: who posts, by the first role of this list the route's policy allows
POSTERS = [(Role.PARTICIPANT, "participant_b"), (Role.PEER_MODERATOR, "peer_b"),
           (Role.CLINICIAN, "clinician"), (Role.RESEARCHER, "researcher"),
           (Role.ADMIN, "admin")]
NASTY = ["", " ", "0", "-1", "2147483648", "99999999999999999999", "1e309", "NaN", "null",
         "../../etc/passwd", "\u202e\u0000"[:1], "<b>x</b>", "a" * 5000, "\ufeff", "😀" * 50,
         "2026-02-30", "25:61", "y", "on", "true", "[]", "{}"]
#: routes that answer a successful post with 200: the page shows something only once
SUCCESS_200 = {"outcomes.enrol"}  # the new participant's invite link
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
               max_size=60)
FUZZ = settings(max_examples=6, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def field_values(choices: list[str]) -> st.SearchStrategy[str]:
    options = [st.sampled_from(NASTY), TEXT]
    if choices:
        options.insert(0, st.sampled_from(choices))
    return st.one_of(options)


def poster_of(policy: object) -> str:
    if policy == PUBLIC:
        return "anonymous"
    return next(who for role, who in POSTERS if role in policy)


def post_routes(app: Flask, values: dict) -> list[tuple[str, str, str]]:
    """(endpoint, path, poster) of every POST route but the webhooks and SKIP."""
    result = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            view = app.view_functions[rule.endpoint]
            if ("POST" not in rule.methods or rule.endpoint in SKIP
                    or getattr(view, "signed_by", None)):
                continue
            path = url_for(rule.endpoint, **url_values(rule, values))
            result.append((rule.endpoint, path, poster_of(roles_of(view))))
    return sorted(result)


def get_pages(app: Flask, who: str, values: dict) -> list[str]:
    role = None if who == "anonymous" else next(r for r, w in POSTERS if w == who)
    pages = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            policy = roles_of(app.view_functions[rule.endpoint])
            if "GET" not in rule.methods or rule.endpoint == "static" or policy is None:
                continue
            if policy == PUBLIC or role in policy:
                pages.append(url_for(rule.endpoint, **url_values(rule, values)))
    return pages


def collect_forms(client, pages: list[str]) -> tuple[dict[str, dict[str, list[str]]], str]:
    """Every POST form on the pages, and a CSRF token of this browser."""
    forms: dict[str, dict[str, list[str]]] = {}
    token = None
    for path in pages:
        page = client.get(path).get_data(as_text=True)
        for action, fields in forms_on(page, path).items():
            known = forms.setdefault(action, {})
            for name, choices in fields.items():
                known.setdefault(name, []).extend(choices)
        token = token or csrf_token(page)
    assert token, "no page carried a CSRF token"
    return forms, token


def fuzz_route(app: Flask, client, path: str, fields: dict[str, list[str]], token: str,
               failures: list[str], *, ok_200: bool = False) -> None:
    names = sorted(set(fields) - {"csrf_token"}) or ["body", "text", "value"]
    strategy = st.fixed_dictionaries({name: field_values(fields.get(name, []))
                                      for name in names})

    @FUZZ
    @given(data=strategy)
    def run(data: dict[str, str]) -> None:
        with app.app_context():
            before = row_counts()
        response = client.post(path, data={**data, "csrf_token": token})
        status = response.status_code
        if status >= 500:
            failures.append(f"POST {path} {data!r}: {status}")
        elif status >= 400 or (status == 200 and not ok_200):
            with app.app_context():
                after = row_counts()
            if after != before:
                changed = {k: (before[k], after[k]) for k in after if after[k] != before[k]}
                failures.append(f"POST {path} {data!r}: refused ({status}) but wrote {changed}")

    run()


def test_every_form_survives_generated_input(app):
    with app.app_context():
        cast = make_cast()
    values = {**cast.b_values, "token": "made-up-token-0123456789"}
    routes = post_routes(app, values)
    assert len(routes) > 40
    clients = {who: (app.test_client() if who == "anonymous" else sign_in(app, who))
               for who in {poster for *_, poster in routes}}
    app.config["WTF_CSRF_ENABLED"] = True
    found = {who: collect_forms(client, get_pages(app, who, values))
             for who, client in clients.items()}
    failures: list[str] = []
    with_fields = 0
    # admins last: what they change (settings, users) must not disturb the others' posts
    for endpoint, path, who in sorted(routes, key=lambda r: (r[2] == "admin", r[0])):
        forms, token = found[who]
        with_fields += bool(forms.get(path))
        fuzz_route(app, clients[who], path, forms.get(path, {}), token, failures,
                   ok_200=endpoint in SUCCESS_200)
    assert with_fields > 25, "the pages showed too few of the forms"
    assert failures == [], "\n".join(failures[:40])


@pytest.mark.parametrize("value", ["x" * 100_000, "\u0000", "é" * 3000])
def test_huge_or_odd_text_in_a_message_form_is_refused_cleanly(app, value):
    """One form at the edge: a message to the moderator much too long, a NUL byte."""
    with app.app_context():
        make_cast()
    client = sign_in(app, "participant_b")
    with app.app_context():
        before = row_counts()
    response = client.post("/messages", data={"body": value})
    assert response.status_code < 500
    if response.status_code != 302:
        with app.app_context():
            assert row_counts() == before


def test_nul_byte_on_the_sign_in_form_is_not_a_500(app):
    """Anyone can send it: PostgreSQL cannot store a NUL byte, so every request carrying
    one is refused with a 400 before any view (``core.security.refuse_nul_bytes``)."""
    with app.app_context():
        make_cast()
    response = app.test_client().post("/login", data={"identifier": "T-0001\x00",
                                                      "password": "x\x00"})
    assert response.status_code == 400

"""The study set-up pages: who may use them, editing arms on the form, the change guard's
reasons on the page, and YAML download and import with a dry run."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from core.audit import AuditEntry
from core.extensions import db
from core.roles import Role
from outcomes import setup
from outcomes.models import Arm, Study
from outcomes.randomisation import open_enrolment
from tests.factories import make_consent, make_participant, make_staff
from tests.outcomes.trial import make_trial, researcher


@pytest.fixture
def trial(app) -> None:
    with app.app_context():
        make_consent("1.0")
        make_trial()
        researcher()


@pytest.fixture
def signed_in(trial, auth) -> None:
    auth.login("researcher@example.org")


def open_it(app) -> None:
    with app.app_context():
        open_enrolment(db.session.scalar(select(Study)), actor=researcher(), seed="pages")
        db.session.commit()


def arms_of(app) -> list[tuple[str, str, int, bool]]:
    with app.app_context():
        return [(a.code, a.name, a.ratio, a.has("forum"))
                for a in db.session.scalars(select(Arm).order_by(Arm.id))]


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))


class _Form(HTMLParser):
    """The values a browser would submit from a page's forms: text inputs, ticked boxes,
    textareas and selected options (not the buttons)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "file"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.values[name] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data


def submitted(page: bytes) -> dict[str, str]:
    reader = _Form()
    reader.feed(page.decode())
    return {k: v.removeprefix("\r\n").removeprefix("\n") for k, v in reader.values.items()}


def form_post(client) -> dict[str, Any]:
    """What the browser would send back unchanged from the set-up page."""
    page = client.get("/research/setup")
    assert page.status_code == 200
    return submitted(page.data)


# --- who may use the pages -----------------------------------------------------------------

@pytest.mark.parametrize(("role", "get", "post"), [
    ("researcher", 200, None), ("admin", 200, 403), ("clinician", 403, 403),
    ("peer_moderator", 403, 403)])
def test_the_set_up_page_is_for_researchers_and_admins_only_look(app, client, auth, trial,
                                                                   role, get, post):
    with app.app_context():
        if role != "researcher":
            make_staff(Role(role))
    auth.login(f"{role}@example.org")
    assert client.get("/research/setup").status_code == get
    assert client.get("/research/setup/study.yaml").status_code == get
    if post:
        assert client.post("/research/setup", data={"name": "X"}).status_code == post
        assert client.get("/research/setup/import").status_code == 403
        assert client.post("/research/setup/import", data={"text": "x"}).status_code == 403


def test_participants_are_refused_and_visitors_sent_to_sign_in(app, client, auth, trial):
    assert client.get("/research/setup").status_code == 302
    with app.app_context():
        make_participant(db.session.scalar(select(Study)), "T-0009")
    auth.login("T-0009")
    for path in ("/research/setup", "/research/setup/study.yaml", "/research/setup/import"):
        assert client.get(path).status_code == 403
    assert client.post("/research/setup", data={}).status_code == 403


def test_admins_see_the_set_up_read_only(app, client, auth, trial):
    with app.app_context():
        make_staff(Role.ADMIN)
    auth.login("admin@example.org")
    page = client.get("/research/setup").get_data(as_text=True)
    assert 'action="/research/setup"' not in page and 'name="arms-0-code"' not in page
    assert "Guided" in page and "Allocation ratio 1." in page
    assert "Import YAML" not in page


# --- editing on the page ---------------------------------------------------------------------

def test_the_page_shows_each_arm_as_a_labelled_fieldset(client, signed_in):
    page = client.get("/research/setup").get_data(as_text=True)
    assert page.count('class="card stack setup-arm"') == 2
    assert "<legend><h3>Arm 1: guided</h3></legend>" in page
    for name in ("Therapy modules", "Peer forum", "SMS symptom prompts"):
        assert page.count(f">{name}</label>") == 2
    values = submitted(client.get("/research/setup").data)
    assert values["arms-0-code"] == "guided" and values["arms-1-ratio"] == "1"
    assert 'for="arms-1-feature_forum"' in page


def test_editing_and_saving_the_set_up(app, client, signed_in):
    data = form_post(client)
    data.update({"name": "Kinship trial", "arms-0-ratio": "2", "arms-1-name": "On your own",
                 "sites": "North\nSouth\nEast", "consent_version": "1.0",
                 "arms-1-feature_forum": "y"})
    response = client.post("/research/setup", data=data)
    assert response.status_code == 302
    assert arms_of(app) == [("guided", "Guided", 2, True), ("self", "On your own", 1, True)]
    with app.app_context():
        study = db.session.scalar(select(Study))
        assert study.name == "Kinship trial" and study.sites == ["North", "South", "East"]
    assert audit_actions(app)[-1] == "study.setup_changed"
    page = client.get("/research/setup").get_data(as_text=True)
    assert "The study set-up is saved (6 changes" in page


def test_saving_without_changes_changes_nothing(app, client, signed_in):
    before = audit_actions(app)
    response = client.post("/research/setup", data=form_post(client), follow_redirects=True)
    assert "Nothing has changed." in response.get_data(as_text=True)
    assert audit_actions(app) == before


def test_adding_and_removing_arms_before_enrolment_opens(app, client, signed_in):
    data = form_post(client) | {"add_arm": "Add an arm"}
    page = client.post("/research/setup", data=data)
    assert page.status_code == 200 and b"Arm 3" in page.data
    assert len(arms_of(app)) == 2  # adding a fieldset saves nothing
    data = form_post(client) | {"arms-2-code": "waitlist", "arms-2-name": "Waiting list",
                                "arms-2-ratio": "1", "arms-1-remove": "y"}
    assert client.post("/research/setup", data=data).status_code == 302
    assert arms_of(app) == [("guided", "Guided", 1, True), ("waitlist", "Waiting list", 1, False)]


def test_problems_are_shown_on_their_fields_and_what_was_typed_is_kept(app, client, signed_in):
    data = form_post(client) | {"arms-1-code": "Self Arm", "code_prefix": "t!",
                                "strata": "site\nbaseline_loneliness: high, high",
                                "name": "Typed name"}
    response = client.post("/research/setup", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="arms-1-code-error"' in page and 'aria-describedby="arms-1-code-hint ' \
        'arms-1-code-error"' in page
    assert '<a href="#code_prefix">Study code prefix: study.code_prefix: use 1 to 10' in page
    assert "strata.1.levels: &#39;high&#39; is listed twice" in page
    assert submitted(response.data)["name"] == "Typed name"
    assert arms_of(app)[1][0] == "self"


def test_after_enrolment_opens_the_page_explains_and_refuses(app, client, signed_in):
    open_it(app)
    page = client.get("/research/setup").get_data(as_text=True)
    assert "Enrolment has opened: some changes are refused" in page
    assert "Add an arm" not in page and "Remove this arm" not in page
    response = client.post("/research/setup", data=form_post(client) | {"arms-0-ratio": "3"})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "arms.guided.ratio: the allocation ratio cannot change once enrolment has opened" \
        in text
    assert 'id="arms-0-ratio-error"' in text
    assert arms_of(app)[0][2] == 1
    data = form_post(client) | {"arms-1-remove": "y"}
    assert "arm &#39;self&#39; cannot be removed" in client.post(
        "/research/setup", data=data).get_data(as_text=True)


def test_after_enrolment_opens_a_feature_switch_asks_for_confirmation(app, client, signed_in):
    open_it(app)
    data = form_post(client) | {"arms-1-feature_forum": "y"}
    response = client.post("/research/setup", data=data)
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert "Please confirm these changes" in text and "switching a feature changes" in text
    assert arms_of(app)[1][3] is False
    assert client.post("/research/setup", data=data | {"confirm": "y"}).status_code == 302
    assert arms_of(app)[1][3] is True
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "study.setup_changed"))
        assert entry.detail["confirmed"] is True and entry.detail["via"] == "page"


# --- YAML download and import --------------------------------------------------------------

def test_the_yaml_download(app, client, signed_in):
    response = client.get("/research/setup/study.yaml")
    assert response.headers["Content-Disposition"] == 'attachment; filename="study-test.yaml"'
    assert response.mimetype == "application/yaml"
    data = yaml.safe_load(response.data)
    assert [a["code"] for a in data["arms"]] == ["guided", "self"]


def test_importing_the_download_changes_nothing(app, client, signed_in):
    text = client.get("/research/setup/study.yaml").get_data(as_text=True)
    before = audit_actions(app)
    dry = client.post("/research/setup/import", data={"text": text, "dry_run": "y"})
    assert "None: importing this changes nothing." in dry.get_data(as_text=True)
    response = client.post("/research/setup/import", data={"text": text, "submit": "y"},
                           follow_redirects=True)
    assert "Nothing has changed." in response.get_data(as_text=True)
    assert audit_actions(app) == before


def test_a_dry_run_shows_the_differences_and_saves_nothing(app, client, signed_in):
    text = client.get("/research/setup/study.yaml").get_data(as_text=True)
    changed = text.replace("ratio: 1", "ratio: 2", 1).replace("name: Self", "name: Alone")
    response = client.post("/research/setup/import", data={"text": changed, "dry_run": "y"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    rows = re.findall(r'<li class="setup-diff-(\w+)"><strong>([^<]+)</strong>: ([^\n]+)', page)
    assert rows == [("ok", "arms.guided.ratio", "1 → 2"), ("ok", "arms.self.name", "changed")]
    assert arms_of(app)[0][2] == 1
    assert submitted(response.data)["text"] == changed  # what was sent stays in the box


def test_import_saves_and_is_audited(app, client, signed_in):
    text = client.get("/research/setup/study.yaml").get_data(as_text=True)
    response = client.post("/research/setup/import", data={
        "text": text.replace("ratio: 1", "ratio: 3", 1), "submit": "y"})
    assert response.status_code == 302
    assert arms_of(app)[0][2] == 3
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "study.setup_changed"))
        assert entry.detail["via"] == "yaml"
        assert entry.detail["changes"] == [{"field": "arms.guided.ratio", "from": 1, "to": 3}]


def test_an_uploaded_file_is_imported(app, client, signed_in):
    text = client.get("/research/setup/study.yaml").get_data(as_text=True)
    upload = (io.BytesIO(text.replace("name: Guided", "name: Together").encode()), "s.yaml")
    response = client.post("/research/setup/import", data={"upload": upload, "submit": "y"},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    assert arms_of(app)[0][1] == "Together"


def test_import_errors_give_line_numbers_and_keep_the_text(app, client, signed_in):
    text = client.get("/research/setup/study.yaml").get_data(as_text=True)
    bad = text.replace("ratio: 1", "ratio: lots", 1)
    line = bad[:bad.index("ratio: lots")].count("\n") + 1
    response = client.post("/research/setup/import", data={"text": bad, "submit": "y"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'Line {line}</a>: arms.0.ratio: give a whole number from 1 to 20' in page
    assert "ratio: lots" in page  # the textarea still holds what was sent
    broken = client.post("/research/setup/import", data={"text": "study: [\n", "submit": "y"})
    assert "not valid YAML" in broken.get_data(as_text=True)
    empty = client.post("/research/setup/import", data={"text": " ", "submit": "y"})
    assert "Paste a set-up document or choose a file." in empty.get_data(as_text=True)


def test_import_after_enrolment_opens_refuses_with_reasons(app, client, signed_in):
    open_it(app)
    text = client.get("/research/setup/study.yaml").get_data(as_text=True)
    bad = text.replace("- factor: site\n", "")
    dry = client.post("/research/setup/import", data={"text": bad, "dry_run": "y"})
    page = dry.get_data(as_text=True)
    assert "This import would be refused." in page and "tag-red" in page
    response = client.post("/research/setup/import", data={"text": bad, "submit": "y"})
    assert response.status_code == 400
    assert "strata: the stratification factors cannot change once enrolment has opened" in \
        response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Study)).strata == ["site", "baseline_loneliness"]


def test_import_of_a_feature_switch_asks_for_confirmation(app, client, signed_in):
    open_it(app)
    text = client.get("/research/setup/study.yaml").get_data(as_text=True)
    switched = text.replace("    forum: false", "    forum: true")
    response = client.post("/research/setup/import", data={"text": switched, "submit": "y"})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "please confirm" in page and 'name="confirm"' in page
    assert arms_of(app)[1][3] is False
    response = client.post("/research/setup/import", data={"text": switched, "submit": "y",
                                                           "confirm": "y"})
    assert response.status_code == 302 and arms_of(app)[1][3] is True


def test_the_study_yaml_example_ships_and_imports(app, client, signed_in):
    from pathlib import Path

    import outcomes

    text = (Path(outcomes.__file__).parent / "study.example.yaml").read_text(encoding="utf-8")
    with app.app_context():
        doc = setup.read_yaml(text)
        assert setup.check(doc) is not None, doc.problems
    response = client.post("/research/setup/import", data={"text": text, "submit": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert [a[0] for a in arms_of(app)] == ["guided", "self"]


def test_the_page_shows_the_schedule_and_links_to_the_sms_protocol_page(app, client, signed_in):
    from outcomes.assessments.schedule import apply_schedule

    with app.app_context():
        apply_schedule(db.session.scalar(select(Study)), [
            {"key": "baseline", "label": "Baseline", "baseline": True,
             "instruments": ["ucla20"]}], actor=None)
        db.session.commit()
    page = client.get("/research/setup").get_data(as_text=True)
    assert 'href="/research/sms-protocol">Edit the SMS protocol</a>' in page
    assert "Baseline <span class=\"muted\">(baseline: ucla20)</span>" in page
    assert "No SMS protocol is saved yet." in page

"""The researcher's export page and ``flask outcomes export``: only researchers may
export, the download is the bundle, each export is audit-logged, and the CLI writes the
same files."""

from __future__ import annotations

import io
import zipfile

import pytest

from core import clock
from core.audit import AuditEntry
from core.extensions import db
from core.roles import Role
from outcomes import exports
from tests.factories import make_staff
from tests.outcomes.exports.seed import NAMES, NOW, STAFF_EMAIL, seed_study

PAGE = "/research/exports"


@pytest.fixture
def seeded(app):
    clock.set_time(NOW)
    with app.app_context():
        return seed_study()


def exports_logged(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEntry).where(
            AuditEntry.action == "outcomes.export")))


def test_the_researcher_downloads_the_bundle(app, client, auth, seeded):
    auth.login(STAFF_EMAIL)
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Data exports" in html and 'name="fmt"' in html and "<legend>File format" in html
    response = client.post(PAGE, data={"fmt": "parquet"})
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "kinship-test-" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        names = archive.namelist()
    assert names == [*(f"{name}.parquet" for name in exports.NAMES), "README.md", "SHA256SUMS"]
    [entry] = exports_logged(app)
    assert entry.actor_id == seeded["researcher"]
    assert entry.detail["checksum"] == response.headers["X-Export-Checksum"]
    assert entry.detail["via"] == "web"


def test_a_bad_format_is_refused_on_the_page_and_nothing_is_logged(app, client, auth, seeded):
    auth.login(STAFF_EMAIL)
    response = client.post(PAGE, data={"fmt": "xlsx"})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert 'class="error" id="fmt-error"' in response.get_data(as_text=True)
    assert exports_logged(app) == []


@pytest.mark.parametrize("role", ["admin", "clinician", "peer_moderator"])
def test_other_staff_are_refused(app, client, auth, seeded, role):
    with app.app_context():
        if role != "clinician":  # the seed made the clinician
            make_staff(Role(role))
    auth.login(f"{role}@example.org")
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"fmt": "csv"}).status_code == 403
    assert exports_logged(app) == []


def test_participants_are_refused_and_visitors_sent_to_sign_in(app, client, auth, seeded):
    assert client.get(PAGE).status_code == 302
    auth.login(NAMES[0])
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"fmt": "csv"}).status_code == 403
    assert exports_logged(app) == []


@pytest.mark.parametrize("fmt", ["csv", "dta"])
def test_the_cli_writes_the_same_files_as_the_page(app, client, auth, runner, seeded, tmp_path,
                                                    fmt):
    auth.login(STAFF_EMAIL)
    with zipfile.ZipFile(io.BytesIO(client.post(PAGE, data={"fmt": fmt}).data)) as archive:
        zipped = {name: archive.read(name) for name in archive.namelist()}
    out = tmp_path / "export"
    result = runner.invoke(args=["outcomes", "export", "--out", str(out), "--format", fmt])
    assert result.exit_code == 0, result.output
    written = {path.name: path.read_bytes() for path in out.iterdir()}
    assert written == zipped
    web, cli = exports_logged(app)
    assert cli.detail["via"] == "cli" and cli.actor_id is None
    assert cli.detail["checksum"] == web.detail["checksum"]
    assert cli.detail["checksum"] in result.output


def test_the_cli_refuses_an_unknown_format_or_study(app, runner, seeded, tmp_path):
    out = tmp_path / "out"
    bad = runner.invoke(args=["outcomes", "export", "--out", str(out), "--format", "xls"])
    assert bad.exit_code == 2 and not out.exists()
    missing = runner.invoke(args=["outcomes", "export", "--out", str(tmp_path / "x"),
                                  "--study", "nope"])
    assert missing.exit_code == 2 and "no study" in missing.output
    assert exports_logged(app) == []

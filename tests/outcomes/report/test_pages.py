"""The researcher's report page, its figures and ``flask outcomes report``: only
researchers see it, it names the export checksum of its snapshot, it is cached by that
checksum, and it holds no identifiers or free text."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core import clock
from core.audit import AuditEntry
from core.extensions import db
from core.roles import Role
from outcomes.exports import bundle
from outcomes.models import Study
from tests.factories import make_staff
from tests.outcomes.exports.seed import FORBIDDEN, NAMES, NOW, STAFF_EMAIL, seed_study

PAGE = "/research/report"


@pytest.fixture
def seeded(app, tmp_path):
    clock.set_time(NOW)
    app.config["REPORT_CACHE_DIR"] = str(tmp_path / "cache")
    with app.app_context():
        ids = seed_study()
        db.session.commit()
    yield ids
    app.config.pop("REPORT_CACHE_DIR", None)


def reports_logged(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEntry).where(
            AuditEntry.action == "outcomes.report").order_by(AuditEntry.id)))


def assert_no_identifiers(text: str) -> None:
    for word in FORBIDDEN:
        assert word.lower() not in text.lower(), word


def test_the_researcher_reads_the_report_with_its_figures(app, client, auth, seeded, tmp_path):
    auth.login(STAFF_EMAIL)
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Exploratory while the trial is running" in html
    for title in ("CONSORT flow by arm", "Baseline characteristics by arm",
                  "Outcome trajectories by arm", "Primary analysis", "Intention to treat",
                  "Reliable change", "Adherence by arm", "Guided against unguided arms",
                  "SMS symptom series"):
        assert title in html
    assert "too few data" in html  # two randomised participants
    with app.app_context():
        expected = bundle.build(db.session.get(Study, seeded["study"]), "csv",
                                now=NOW.replace(second=0, microsecond=0)).checksum
    assert response.headers["X-Report-Checksum"] == expected and expected in html
    assert "pandas 3." in html and "statsmodels" in html
    # the report itself (the site's header and footer are the site's own)
    assert_no_identifiers(html.split('<main id="main"')[1].split("</main>")[0])
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert sources and all(src.startswith(f"/research/report/figures/{expected}/")
                           for src in sources)
    figure = client.get(sources[0])
    assert figure.status_code == 200 and figure.mimetype == "image/png"
    assert figure.data.startswith(b"\x89PNG")
    assert (tmp_path / "cache" / expected / "body.html").is_file()
    assert "script" not in html.split('id="main"')[1]  # nothing inline for the CSP
    [entry] = reports_logged(app)
    assert (entry.actor_id, entry.detail["via"], entry.detail["checksum"]) == (
        seeded["researcher"], "web", expected)


def test_a_second_visit_reads_the_cached_report(app, client, auth, seeded, tmp_path):
    auth.login(STAFF_EMAIL)
    first = client.get(PAGE)
    body = tmp_path / "cache" / first.headers["X-Report-Checksum"] / "body.html"
    body.write_text(body.read_text() + "<p>from the cache</p>")
    assert "from the cache" in client.get(PAGE).get_data(as_text=True)


def test_unknown_or_malformed_figures_are_not_found(client, auth, seeded):
    auth.login(STAFF_EMAIL)
    assert client.get(f"/research/report/figures/{'a' * 64}/consort.png").status_code == 404
    assert client.get("/research/report/figures/..%2F..%2Fx/consort.png").status_code == 404
    assert client.get(f"/research/report/figures/{'a' * 64}/..png").status_code == 404


@pytest.mark.parametrize("role", ["admin", "clinician", "peer_moderator"])
def test_other_staff_are_refused(app, client, auth, seeded, role):
    with app.app_context():
        if role != "clinician":  # the seed made the clinician
            make_staff(Role(role))
            db.session.commit()
    auth.login(f"{role}@example.org")
    assert client.get(PAGE).status_code == 403
    assert client.get(f"/research/report/figures/{'a' * 64}/consort.png").status_code == 403
    assert reports_logged(app) == []


def test_participants_are_refused_and_visitors_sent_to_sign_in(client, auth, seeded):
    assert client.get(PAGE).status_code == 302
    auth.login(NAMES[0])
    assert client.get(PAGE).status_code == 403
    assert client.get(f"/research/report/figures/{'a' * 64}/consort.png").status_code == 403


def test_the_exports_page_links_the_report(client, auth, seeded):
    auth.login(STAFF_EMAIL)
    assert 'href="/research/report"' in client.get("/research/exports").get_data(as_text=True)


def test_the_cli_writes_report_html_and_figures(app, runner, seeded, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(args=["outcomes", "report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert "consort.png" in figures and "trajectory-ucla3.png" not in figures
    for name in figures:
        assert f'src="figures/{name}"' in html
        assert (out / "figures" / name).read_bytes().startswith(b"\x89PNG")
    assert "Exploratory while the trial is running" in html and "<style>" in html
    checksum = re.search(r"<code>([0-9a-f]{64})</code>", html).group(1)
    assert checksum in result.output
    assert_no_identifiers(html)
    [entry] = reports_logged(app)
    assert (entry.actor_id, entry.detail["via"], entry.detail["checksum"]) == (
        None, "cli", checksum)


def test_the_cli_refuses_an_unknown_study(app, runner, seeded, tmp_path):
    result = runner.invoke(args=["outcomes", "report", "--out", str(tmp_path / "x"),
                                 "--study", "nope"])
    assert result.exit_code == 2 and "no study" in result.output
    assert not (tmp_path / "x").exists()
    assert reports_logged(app) == []


def test_starting_the_app_does_not_load_the_analysis_packages():
    """statsmodels, pingouin and matplotlib load on the first report, not in every web
    worker and command at start-up."""
    code = ("import sys; from core import create_app; create_app({'TESTING': True, "
            "'SQLALCHEMY_DATABASE_URI': 'sqlite://', 'SECRET_KEY': 'x' * 40, "
            "'KINSHIP_DEMO': False}); "
            "print(sorted(m for m in ('statsmodels', 'pingouin', 'matplotlib') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[3], timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_report_escapes_names_set_up_by_researchers(app):
    """Arm names and notes are text: a tag in them is shown, not run."""
    from flask import render_template

    from outcomes.report.document import Report, Section, Table

    report = Report("Study <b>", "s", NOW, "0" * 64, "git x", [("Arms", "<script>x</script>")],
                    [("pandas", "3")], [Section("k", "Title <i>", notes=["<img src=x>"],
                                                tables=[Table("<u>", ["<h>"], [["<c>"]])])])
    with app.test_request_context():
        html = render_template("outcomes/report/standalone.html", report=report,
                               figure_src=lambda name: name)
    for raw in ("<script>", "<img src=x>", "<b>", "<i>", "<u>", "<h>", "<c>"):
        assert raw not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x&gt;" in html
    # a scrollable table is a named region a keyboard can reach
    assert 'class="table-wrap" tabindex="0" role="region" aria-label="&lt;u&gt;"' in html

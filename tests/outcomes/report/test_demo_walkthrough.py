"""Issue 8 tried as a new user would, on the demo study (`make run`'s seed): the demo
researcher downloads the CSV bundle, opens every table with pandas, and reads the
report in the browser with its figures."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime

import pandas as pd

from core import clock
from core.extensions import db
from outcomes import demo
from outcomes.exports import NAMES
from tests.conftest import AuthActions


def test_the_demo_researcher_exports_and_reads_the_report(app, client):
    # one moment for the export and the report: the same snapshot has the same checksum
    clock.set_time(datetime(2026, 12, 5, 12, 0, tzinfo=UTC))
    with app.app_context():
        assert demo.seed()
        db.session.commit()
        emails = [user.email for user in demo_users() if user.email]
    AuthActions(client, app).login("researcher@demo.kinship.test", demo.DEMO_PASSWORD)

    response = client.post("/research/exports", data={"fmt": "csv"})
    assert response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        tables = {name: pd.read_csv(archive.open(f"{name}.csv")) for name in NAMES}
        everything = b"".join(archive.read(name) for name in archive.namelist())
    assert len(tables["participants"]) == 30
    assert tables["participants"]["pseudonym"].is_unique
    assert set(tables["scores_wide"]["pseudonym"]) <= set(tables["participants"]["pseudonym"])
    assert not tables["assessments_long"].empty and not tables["events"].empty
    assert not any(email.encode() in everything for email in emails)
    assert demo.DEMO_PARTICIPANT[1].encode() not in everything  # display names stay in

    page = client.get("/research/report")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert response.headers["X-Export-Checksum"] == page.headers["X-Report-Checksum"]
    for title in ("CONSORT flow by arm", "Baseline characteristics by arm",
                  "Outcome trajectories by arm", "Primary analysis", "SMS symptom series"):
        assert title in html
    figures = re.findall(r'<img src="([^"]+)"[^>]*alt="([^"]+)"', html)
    assert len(figures) >= 3 and all(alt.strip() for _src, alt in figures)
    for src, _alt in figures:
        image = client.get(src)
        assert image.status_code == 200 and image.data.startswith(b"\x89PNG")


def demo_users():
    from sqlalchemy import select

    from core.models import User

    return db.session.scalars(select(User)).all()

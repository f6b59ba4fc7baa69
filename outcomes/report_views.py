"""The researcher's effectiveness report page (``/research/report``) and its figures,
served from the report cache by a researcher-only route (the page shows them as plain
``<img>`` files, so nothing inline is needed under the CSP).

The report package (statsmodels, pingouin, matplotlib) is imported on the first request,
not when the app starts. Each page view is audit-logged with the snapshot checksum (and
the first report of a study creates its pseudonym secret, as an export does); the page
commits once. Figures are read from the cache only.
"""

from __future__ import annotations

from flask import abort, render_template, send_file
from flask_login import current_user

from core import navigation
from core.access import role_required
from core.extensions import db
from core.roles import Role
from outcomes import bp, services

navigation.add("Report", "outcomes.report_page", {Role.RESEARCHER}, order=13)


@bp.route("/report")
@role_required(Role.RESEARCHER)
def report_page():
    from outcomes import report
    from outcomes.report import render

    try:
        study = services.current_study()
    except services.NoStudy as exc:
        abort(404, str(exc))
    body, checksum = render.page_body(study)
    report.record_view(study, checksum, actor=current_user, via="web")
    db.session.commit()
    response = render_template("outcomes/report/index.html", body=body, study=study)
    return response, 200, {"Cache-Control": "no-store", "X-Report-Checksum": checksum}


@bp.route("/report/figures/<checksum>/<figure>.png")
@role_required(Role.RESEARCHER)
def report_figure(checksum: str, figure: str):
    from outcomes.report import render

    path = render.figure_file(checksum, figure)
    if path is None:
        abort(404)
    response = send_file(path, mimetype="image/png", max_age=3600)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response

"""The bundle in each format: no identifier or free text in any file (decoded too),
formula neutralisation, valid Stata names, checksums that verify, the README and the
audit entry."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pandas as pd
import pytest

from core import clock
from core.audit import AuditEntry, verify_chain
from core.extensions import db
from core.models import SiteSetting
from outcomes import exports
from outcomes.exports import bundle, formats, pseudonyms
from outcomes.models import Study
from tests.outcomes.exports.seed import FORBIDDEN, FORMULA_SITE, NOW, seed_study

FORMATS = ("csv", "parquet", "dta")


@pytest.fixture
def study_id(app):
    clock.set_time(NOW)
    with app.app_context():
        return seed_study()["study"]


def decoded(name: str, content: bytes) -> str:
    """A file's content as text: CSV and Markdown as they are, Parquet and Stata read back
    into a table (values, names and labels), plus the raw bytes read as Latin-1."""
    raw = content.decode("latin-1")
    if name.endswith(".parquet"):
        return pd.read_parquet(io.BytesIO(content)).to_csv() + raw
    if name.endswith(".dta"):
        reader = pd.read_stata(io.BytesIO(content), iterator=True)
        labels = " ".join(reader.variable_labels().values())
        return reader.read().to_csv() + labels + raw
    return content.decode("utf-8") + raw


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_identifier_or_free_text_leaves_in_any_file(app, study_id, fmt):
    with app.app_context():
        study = db.session.get(Study, study_id)
        result, archive = bundle.export(study, fmt, actor=None, via="test")
        secret = db.session.get(SiteSetting, pseudonyms.setting_key(study)).value
        with zipfile.ZipFile(io.BytesIO(archive)) as opened:
            files = {name: opened.read(name) for name in opened.namelist()}
    ext = formats.EXTENSIONS[fmt]
    assert sorted(files) == sorted([*(f"{name}.{ext}" for name in exports.NAMES), "README.md",
                                    "SHA256SUMS"])
    assert files == result.files
    for name, content in files.items():
        text = decoded(name, content)
        for forbidden in (*FORBIDDEN, secret):
            assert forbidden.casefold() not in text.casefold(), (name, forbidden)
    assert result.rows["participants"] == 3 and result.rows["sms"] == 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_tables_read_back_with_the_same_values(app, study_id, fmt):
    with app.app_context():
        study = db.session.get(Study, study_id)
        result = bundle.build(study, fmt)
        frames = exports.tables_for(study)[1]
    read = {"csv": lambda b: pd.read_csv(io.BytesIO(b), keep_default_na=False,
                                         na_values=[""]),
            "parquet": lambda b: pd.read_parquet(io.BytesIO(b)),
            "dta": lambda b: pd.read_stata(io.BytesIO(b))}[fmt]
    back = read(result.files[f"scores_wide.{fmt}"])
    assert list(back["pseudonym"]) == list(frames["scores_wide"]["pseudonym"])
    assert back["ucla3_total_week6"].dropna().tolist() == [4.0]
    events = read(result.files[f"events.{fmt}"])
    assert events["day"].tolist() == frames["events"]["day"].tolist()


def test_csv_cells_that_look_like_formulas_are_neutralised(app, study_id):
    with app.app_context():
        files = bundle.build(db.session.get(Study, study_id), "csv").files
    participants = pd.read_csv(io.BytesIO(files["participants.csv"]), dtype=str)
    assert FORMULA_SITE not in participants["site"].tolist()
    assert "'" + FORMULA_SITE in participants["site"].tolist()
    # a negative number is a number, not a formula: it stays as it is
    events = files["events.csv"].decode()
    assert ",-1.0\n" in events and "'-1.0" not in events


def test_neutralise_touches_only_text_that_starts_like_a_formula():
    frame = pd.DataFrame({
        "text": ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tx", "\rx", "safe", "a=b", None],
        "number": [-5, 1, 2, 3, 4, 5, 6, 7, 8],
        "real": [-1.5, 0.0, 1, 2, 3, 4, 5, 6, float("nan")]})
    out = formats.neutralise(frame)
    assert out["text"].tolist()[:8] == ["'=1+1", "'+SUM(A1)", "'-2", "'@cmd", "'\tx", "'\rx",
                                        "safe", "a=b"]
    assert pd.isna(out["text"].iloc[8])
    assert out["number"].tolist() == frame["number"].tolist()
    assert out["real"].iloc[0] == -1.5
    assert frame["text"].iloc[0] == "=1+1"  # the caller's frame is untouched


def test_stata_names_are_valid_short_and_unique():
    long = "acceptability_total_sum_post_treatment_follow_up"
    names = formats.stata_names([long, long[:40], "in", "2nd", "ok", "with space"])
    assert all(len(name) <= 32 for name in names.values())
    assert len(set(names.values())) == 6
    assert names["ok"] == "ok" and names["in"] != "in" and names["2nd"].startswith("v_")
    assert names["with space"] == "with_space"
    frame = pd.DataFrame({long: [1.0], "flag": [True], "maybe": pd.array([None], "boolean"),
                          "count": pd.array([None], "Int64"), "text": ["=x"]})
    back = pd.read_stata(io.BytesIO(formats.to_dta(frame, {long: "A long one"})),
                         iterator=True)
    assert back.variable_labels()[names[long]] == "A long one"
    values = back.read()
    assert values[names[long]].tolist() == [1.0] and values["flag"].tolist() == [1]
    assert values["text"].tolist() == ["=x"]


def test_unknown_format_is_refused(app, study_id):
    with app.app_context(), pytest.raises(formats.UnknownFormat):
        bundle.build(db.session.get(Study, study_id), "xlsx")


def test_checksums_verify_and_the_readme_describes_the_export(app, study_id):
    with app.app_context():
        study = db.session.get(Study, study_id)
        result = bundle.build(study, "parquet")
    sums = result.files["SHA256SUMS"].decode()
    listed = {}
    for line in sums.splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    assert set(listed) == set(result.files) - {"SHA256SUMS"}
    for name, digest in listed.items():
        assert hashlib.sha256(result.files[name]).hexdigest() == digest
    assert result.checksum == hashlib.sha256(result.files["SHA256SUMS"]).hexdigest()
    readme = result.files["README.md"].decode()
    assert "Study: Test study (`test`)" in readme
    assert f"Snapshot time (UTC): {NOW:%Y-%m-%d %H:%M:%S}" in readme
    assert "Format: parquet" in readme and "Filters: none" in readme
    assert f"Software: {bundle.software_version()}" in readme
    assert "`participants.parquet`: 3 row(s)" in readme


def test_the_same_snapshot_gives_the_same_zip(app, study_id):
    with app.app_context():
        study = db.session.get(Study, study_id)
        first, second = bundle.build(study, "csv"), bundle.build(study, "csv")
    assert first.zip_bytes() == second.zip_bytes()
    assert first.zip_name == "kinship-test-20260501T120000Z-csv.zip"


def test_stata_files_carry_the_snapshot_time_not_the_minute_they_were_written(app, study_id):
    """So one snapshot gives the same bytes whenever it is written (the page and the CLI
    a minute apart once gave two checksums)."""
    with app.app_context():
        study = db.session.get(Study, study_id)
        files = bundle.build(study, "dta").files
    stamp = NOW.strftime("%d %b %Y %H:%M").encode()
    stata = {name: content for name, content in files.items() if name.endswith(".dta")}
    assert stata and all(stamp in content[:400] for content in stata.values())


def test_each_export_is_audit_logged_with_its_checksums(app, study_id):
    with app.app_context():
        study = db.session.get(Study, study_id)
        result, archive = bundle.export(study, "dta", actor=None, via="cli")
        db.session.commit()
        entry = db.session.scalar(db.select(AuditEntry).where(
            AuditEntry.action == "outcomes.export"))
        assert (entry.target_type, entry.target_id) == ("study", study.id)
        assert entry.detail["checksum"] == result.checksum
        assert entry.detail["zip_sha256"] == hashlib.sha256(archive).hexdigest()
        assert (entry.detail["format"], entry.detail["via"]) == ("dta", "cli")
        assert entry.detail["rows"]["participants"] == 3
        assert verify_chain().ok

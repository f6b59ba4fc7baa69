"""``flask demo`` (the demo study for trying Kinship out) and ``flask outcomes``
(score questionnaires by hand, check instrument definitions, check the allocation
sequence against its seed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup

from core.extensions import db

demo_cli = AppGroup("demo", help="The demo study for trying Kinship out.")


@demo_cli.command("seed")
@click.option("--participants", default=30, show_default=True)
def seed(participants: int) -> None:
    """Create the demo study, unless the database already has a study."""
    from outcomes import demo

    if not demo.seed(participants=participants):
        click.echo("A study already exists; the demo was not seeded again.")
        return
    db.session.commit()
    click.echo(f"Demo study seeded with {participants} participants.")


@demo_cli.command("logins")
def logins() -> None:
    """Print the demo accounts and their password."""
    from outcomes import demo

    click.echo(demo.logins_text())


# ``flask outcomes``: the imports sit inside the commands so that starting the app does not
# read the instrument definitions.

outcomes_cli = AppGroup("outcomes", help="Trial outcomes: score questionnaires, check "
                                         "instrument definitions and the allocation sequence.")
instruments_cli = AppGroup("instruments", help="Questionnaire instrument definitions.")
outcomes_cli.add_command(instruments_cli)
randomisation_cli = AppGroup("randomisation", help="The concealed allocation sequence.")
outcomes_cli.add_command(randomisation_cli)


@outcomes_cli.command("score", context_settings={"ignore_unknown_options": True})
@click.argument("instrument_id", metavar="INSTRUMENT")
@click.argument("responses", nargs=-1, metavar="R1 R2 ...")
@click.option("--definitions", type=click.Path(exists=True, path_type=Path), default=None,
              help="A file or folder of study-defined instruments to use as well.")
def score_answers(instrument_id: str, responses: tuple[str, ...],
                  definitions: Path | None) -> None:
    """Score INSTRUMENT from answers in item order (NA for a missing answer).

    Prints one JSON object: instrument, total (and total_sum for mspss), subscales, labels,
    missing, status; null where a score cannot be computed. Exits 2, naming the item, when an
    answer is invalid.
    """
    import json

    from outcomes import instruments, scoring

    try:
        instrument = instruments.get(instrument_id, extra=definitions)
        result = scoring.score(instrument, scoring.parse_responses(instrument, responses))
    except (instruments.UnknownInstrument, instruments.InstrumentError,
            scoring.ScoringError) as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from exc
    click.echo(json.dumps(_json_numbers(result.as_dict())))


def _json_numbers(value: Any) -> Any:
    """Floats that are whole numbers as ints (``45.0`` -> ``45``), everything else unchanged."""
    if isinstance(value, dict):
        return {key: _json_numbers(item) for key, item in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@instruments_cli.command("validate")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def validate_instruments(path: Path | None) -> None:
    """Check instrument definitions: the built-in ones, or PATH (a file or a folder).

    Prints ``file:line: message`` for each problem and exits 1 when there is any.
    """
    from outcomes import instruments

    found, problems = instruments.check_path(path or _relative(instruments.BUILTIN_DIR))
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) found.", err=True)
        raise SystemExit(1)
    click.echo(f"{len(found)} instrument definition(s) checked: no problems.")


def _relative(path: Path) -> Path:
    """``path`` relative to the working directory when it is inside it, for shorter messages."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


@randomisation_cli.command("verify")
@click.option("--study", "slug", default=None, help="The study's slug (default: the first).")
def verify_randomisation(slug: str | None) -> None:
    """Regenerate the allocation sequence from the stored seed and compare it with the
    stored slots. Prints counts only; exits 1 when anything differs."""
    from sqlalchemy import select

    from outcomes import randomisation, services
    from outcomes.models import Study

    study = (db.session.scalar(select(Study).where(Study.slug == slug)) if slug
             else services.current_study())
    if study is None:
        click.echo(f"Error: no study {slug!r}.", err=True)
        raise SystemExit(2)
    strata, slots, taken = randomisation.sequence_summary(study)
    if not randomisation.verify_sequence(study):
        click.echo(f"MISMATCH: the allocation sequence of {study.slug} does not match its "
                   "seed (or it has no seed).", err=True)
        raise SystemExit(1)
    click.echo(f"OK: {study.slug}: {slots} slots in {strata} strata ({taken} taken) match "
               "the seed.")


study_cli = AppGroup("study", help="The study set-up as YAML (arms, strata, schedule, SMS "
                                   "protocol).")
outcomes_cli.add_command(study_cli)


def _study_for(slug: str | None):
    from sqlalchemy import select

    from outcomes import services
    from outcomes.models import Study

    try:
        study = (db.session.scalar(select(Study).where(Study.slug == slug)) if slug
                 else services.current_study())
    except services.NoStudy as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from exc
    if study is None:
        click.echo(f"Error: no study {slug!r}.", err=True)
        raise SystemExit(2)
    return study


@study_cli.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8"))
@click.option("--study", "slug", default=None, help="The study's slug (default: the first).")
def export_study(file, slug: str | None) -> None:
    """Write the study set-up to FILE as YAML (``-`` for standard output)."""
    from outcomes import setup

    file.write(setup.to_yaml(setup.study_data(_study_for(slug))))


@study_cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--dry-run", is_flag=True, help="Show the differences; save nothing.")
@click.option("--confirm", is_flag=True,
              help="Confirm changes to the intervention once enrolment has started "
                   "(feature flags, lost-to-follow-up days).")
@click.option("--study", "slug", default=None, help="The study's slug (default: the first).")
def import_study(file, dry_run: bool, confirm: bool, slug: str | None) -> None:
    """Read the study set-up from FILE (YAML, ``-`` for standard input) and save it.

    Prints each difference. Exits 1, saving nothing, when the file has problems (each
    with its line) or a change is refused or needs --confirm.
    """
    from outcomes import setup

    study = _study_for(slug)
    name = getattr(file, "name", "-")
    doc = setup.read_yaml(file.read())
    try:
        plan = setup.preview(study, doc) if dry_run else setup.save(
            study, doc, actor=None, confirmed=confirm, via="cli")
    except setup.SetupError as exc:
        db.session.rollback()
        for problem in exc.problems:
            click.echo(f"{name}:{problem.line}: {problem.message}" if problem.line
                       else f"{name}: {problem.message}", err=True)
        if isinstance(exc, setup.NeedsConfirmation):
            click.echo("Nothing was saved: run again with --confirm to make these changes.",
                       err=True)
        raise SystemExit(1) from exc
    for change in plan.changes:
        mark = {"ok": " ", "confirm": "!", "refused": "x"}[change.level]
        click.echo(f"{mark} {change.describe()}" + (f"  ({change.reason})"
                                                   if change.level != "ok" else ""))
    if dry_run:
        db.session.rollback()
        verdict = "would be refused" if plan.refused else "not saved (dry run)"
        click.echo(f"{len(plan.changes)} difference(s); {verdict}.")
        raise SystemExit(1 if plan.refused else 0)
    db.session.commit()
    click.echo(f"Saved {len(plan.changes)} change(s)." if plan.changes else "Nothing changed.")


@outcomes_cli.command("export")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder to write the files to (made if missing).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "dta"]), default="csv",
              show_default=True)
@click.option("--study", "slug", default=None, help="The study's slug (default: the first).")
def export_data(out: Path, fmt: str, slug: str | None) -> None:
    """Write the pseudonymised export (every table, the codebook, README.md and SHA256SUMS)
    to OUT, the same files as the researcher page's zip. The export is audit-logged."""
    from outcomes.exports import bundle

    study = _study_for(slug)
    result, _archive = bundle.export(study, fmt, actor=None, via="cli")
    db.session.commit()
    for path in result.write_to(out):
        click.echo(str(path))
    click.echo(f"Export checksum (SHA-256 of SHA256SUMS): {result.checksum}")


@outcomes_cli.command("report")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder to write report.html and figures/ to (made if missing).")
@click.option("--study", "slug", default=None, help="The study's slug (default: the first).")
def report_command(out: Path, slug: str | None) -> None:
    """Write the effectiveness report (report.html and its figures) to OUT, built from the
    export tables; prints the files and the snapshot's export checksum. Audit-logged."""
    from outcomes import report
    from outcomes.report import render

    study = _study_for(slug)
    result = report.build(study)
    report.record_view(study, result.checksum, actor=None, via="cli")
    db.session.commit()
    for path in render.write_folder(result, out):
        click.echo(str(path))
    click.echo(f"Snapshot checksum (export checksum of the same data): {result.checksum}")

"""The export bundle: every table and the codebook in one format, a README describing the
export and ``SHA256SUMS``; as a zip for the researcher page, or as files in a folder for
``flask outcomes export``.

``export`` builds the files and appends an ``outcomes.export`` audit entry with the
checksums (it flushes; the caller commits). The *export checksum* is the SHA-256 of the
``SHA256SUMS`` file, which names every other file's SHA-256: the same for the zip and the
folder of one snapshot.
"""

from __future__ import annotations

import functools
import hashlib
import io
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from core import audit
from outcomes import exports
from outcomes.exports import formats
from outcomes.models import Study

ROOT = Path(__file__).resolve().parents[2]
FILTERS = "none: every participant of the study, every table, all data up to the snapshot"


@dataclass(frozen=True)
class Bundle:
    study: Study
    fmt: str
    at: datetime
    #: file name -> content, in listing order (tables, codebook, README.md, SHA256SUMS)
    files: dict[str, bytes]
    #: SHA-256 of SHA256SUMS
    checksum: str
    rows: dict[str, int]

    @property
    def zip_name(self) -> str:
        return f"kinship-{self.study.slug}-{self.at:%Y%m%dT%H%M%SZ}-{self.fmt}.zip"

    def zip_bytes(self) -> bytes:
        """The files as a zip (stored times are the snapshot time, so it is reproducible)."""
        buffer = io.BytesIO()
        stamp = self.at.timetuple()[:6]
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in self.files.items():
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, content)
        return buffer.getvalue()

    def write_to(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, content in self.files.items():
            target = folder / name
            target.write_bytes(content)
            written.append(target)
        return written


@functools.cache
def software_version() -> str:
    """``git describe`` of the checkout when there is one, else the package version."""
    git = shutil.which("git")
    if git is not None and (ROOT / ".git").exists():
        try:
            done = subprocess.run(  # noqa: S603 (fixed arguments, no user input)
                [git, "describe", "--always", "--dirty", "--tags"], cwd=ROOT,
                capture_output=True, text=True, timeout=5, check=False)
            if done.returncode == 0 and done.stdout.strip():
                return f"git {done.stdout.strip()}"
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        return f"kinship {metadata.version('kinship')}"
    except metadata.PackageNotFoundError:
        return "kinship 0.1.0"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def sums_text(files: dict[str, bytes]) -> str:
    """``sha256sum``'s format: ``<hex>  <name>`` per line (check with ``sha256sum -c``)."""
    return "".join(f"{sha256(content)}  {name}\n" for name, content in files.items())


def readme_text(study: Study, fmt: str, at: datetime, rows: dict[str, int]) -> str:
    ext = formats.EXTENSIONS[fmt]
    listing = "\n".join(f"- `{name}.{ext}`: {count} row(s)" for name, count in rows.items())
    return f"""# Kinship data export: {study.name}

- Study: {study.name} (`{study.slug}`)
- Snapshot time (UTC): {at:%Y-%m-%d %H:%M:%S}
- Software: {software_version()}
- Format: {fmt}
- Filters: {FILTERS}

## Files

{listing}
- `README.md`: this file
- `SHA256SUMS`: the SHA-256 of every other file (`sha256sum -c SHA256SUMS`)

## Conventions

- Participants appear only under a pseudonym (`P-` and 12 hex digits), a keyed HMAC of
  their id with this study's secret: the same in every export of the study, and not
  reversible without the secret, which never leaves the platform.
- Dates are days since the participant's randomisation (fractional; negative before it;
  empty when the participant was not randomised).
- No names, e-mail addresses, phone numbers, IP addresses or free text (forum posts,
  reflections, SMS texts, staff notes) are included.
- Every variable of every table is described in `codebook.{ext}` (label, type, allowed
  values; for scores the instrument version and the scoring and missing-data rules).
- CSV: UTF-8; text cells that begin with `=`, `+`, `-`, `@`, a tab or a carriage return
  start with an added `'` so spreadsheets do not run them as formulas.
- Stata: format 118; names longer than 32 characters are shortened (with a short hash)
  and the variable label holds the codebook label.
"""


def build(study: Study, fmt: str, *, now: datetime | None = None) -> Bundle:
    """The files of one export (no audit entry)."""
    return snapshot(study, fmt, now=now)[0]


def snapshot(study: Study, fmt: str, *, now: datetime | None = None
             ) -> tuple[Bundle, dict[str, Any]]:
    """The files of one export and the DataFrames they were written from (the analysis
    report reads the same frames and names the bundle's checksum). No audit entry."""
    if fmt not in formats.EXTENSIONS:
        raise formats.UnknownFormat(f"unknown export format {fmt!r}; use csv, parquet or dta")
    ctx, frames = exports.tables_for(study, now=now)
    labels = _labels(frames["codebook"])
    ext = formats.EXTENSIONS[fmt]
    files = {f"{name}.{ext}": formats.render(frame, fmt, labels.get(name), at=ctx.now)
             for name, frame in frames.items()}
    rows = {name: len(frame) for name, frame in frames.items()}
    files["README.md"] = readme_text(study, fmt, ctx.now, rows).encode("utf-8")
    files["SHA256SUMS"] = sums_text(files).encode("utf-8")
    return Bundle(study, fmt, ctx.now, files, sha256(files["SHA256SUMS"]), rows), frames


def _labels(codebook: Any) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = {}
    for table, variable, label in codebook[["table", "variable", "label"]].itertuples(
            index=False):
        labels.setdefault(table, {})[variable] = label
    return labels


def export(study: Study, fmt: str, *, actor: Any, via: str, now: datetime | None = None
           ) -> tuple[Bundle, bytes]:
    """Build the bundle and its zip, and audit-log the export (who, how, format, the
    export checksum, the zip's SHA-256, row counts). Flushes; the caller commits."""
    result = build(study, fmt, now=now)
    archive = result.zip_bytes()
    audit.record("outcomes.export", actor=actor, target=study, format=fmt, via=via,
                 checksum=result.checksum, zip_sha256=sha256(archive), rows=result.rows)
    return result, archive

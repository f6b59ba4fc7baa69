"""Writing export tables as CSV, Parquet or Stata ``.dta`` (bytes in memory).

- CSV: UTF-8, no index; text cells that a spreadsheet would read as a formula (starting
  with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) get a leading ``'``. Only
  text columns are touched: a negative number stays a number.
- Parquet: pyarrow, the DataFrame's own types.
- Stata: format 118 (UTF-8), variable names made valid (at most 32 characters; a long name
  is cut and given a short hash so names stay unique), booleans as 0/1 bytes, missing text
  as "", the codebook label as each variable's label.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping
from datetime import datetime

import pandas as pd

EXTENSIONS = {"csv": "csv", "parquet": "parquet", "dta": "dta"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

STATA_MAX_NAME = 32
STATA_MAX_LABEL = 80
#: Stata's reserved names (a variable may not be called so)
STATA_RESERVED = frozenset({
    "_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long",
    "_n", "_N", "_pi", "_pred", "_rc", "_skip", "strL", "using", "with"})
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


class UnknownFormat(ValueError):
    pass


def text_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns
            if pd.api.types.is_string_dtype(frame[c]) or frame[c].dtype == object]


def neutralise_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every formula-like text cell prefixed with ``'``."""
    frame = frame.copy()
    for column in text_columns(frame):
        series = frame[column]
        if series.dtype == object:
            frame[column] = series.map(neutralise_cell, na_action="ignore")
            continue
        risky = series.str.startswith(FORMULA_STARTS).fillna(False).astype(bool)
        if risky.any():
            frame[column] = series.where(~risky, "'" + series)
    return frame


#: rows written at a time by :func:`to_csv`
CSV_ROWS = 200_000


def to_csv(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV, written in blocks of rows. pandas writes the (Arrow-backed) ``str``
    dtype far slower than plain objects, so each block's text columns are converted first:
    the same text in about half the time, and only one block of Python strings alive at a
    time."""
    safe = neutralise(frame)
    text = [c for c in safe.columns if isinstance(safe[c].dtype, pd.StringDtype)]
    parts = []
    for start in range(0, max(len(safe), 1), CSV_ROWS):
        block = safe.iloc[start:start + CSV_ROWS]
        if text:
            block = block.astype(dict.fromkeys(text, object))
        parts.append(block.to_csv(index=False, header=start == 0,
                                  lineterminator="\n").encode("utf-8"))
    return b"".join(parts)


def to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def stata_name(column: str, taken: set[str]) -> str:
    """A valid, unused Stata variable name for ``column`` (itself when already valid)."""
    name = _NOT_NAME.sub("_", column)
    if not name or name[0].isdigit():
        name = "v_" + name
    if len(name) > STATA_MAX_NAME or name in STATA_RESERVED or name in taken:
        digest = hashlib.sha256(column.encode()).hexdigest()[:4]
        name = f"{name[:STATA_MAX_NAME - 5]}_{digest}"
    taken.add(name)
    return name


def stata_names(columns: list[str]) -> dict[str, str]:
    taken: set[str] = set()
    return {column: stata_name(column, taken) for column in columns}


def _for_stata(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            frame[column] = series.astype("float64" if series.isna().any() else "int8")
        elif pd.api.types.is_string_dtype(series) or series.dtype == object:
            if series.dropna().map(lambda v: isinstance(v, bool)).all() and series.notna().any():
                frame[column] = series.map(lambda v: float("nan") if v is None else float(v))
            else:
                frame[column] = series.map(lambda v: "" if v is None or v != v else str(v)
                                           ).astype(object)
        elif pd.api.types.is_integer_dtype(series):
            frame[column] = series.astype("float64" if series.isna().any() else "int64")
    return frame


def to_dta(frame: pd.DataFrame, labels: Mapping[str, str] | None = None, *,
           at: datetime | None = None) -> bytes:
    """Stata 118. The file's time stamp is ``at`` (the export's snapshot time), so one
    snapshot always gives the same bytes; pandas would write the minute it ran, and two
    exports of one snapshot a minute apart would differ in checksum."""
    names = stata_names(list(frame.columns))
    prepared = _for_stata(frame).rename(columns=names)
    variable_labels = {names[c]: (labels or {}).get(c, c)[:STATA_MAX_LABEL]
                       for c in frame.columns}
    strl = [names[c] for c in text_columns(frame)
            if frame[c].dropna().astype(str).str.len().max() > 2000]
    buffer = io.BytesIO()
    prepared.to_stata(buffer, write_index=False, version=118, variable_labels=variable_labels,
                      convert_strl=strl, time_stamp=at)
    return buffer.getvalue()


def render(frame: pd.DataFrame, fmt: str, labels: Mapping[str, str] | None = None, *,
           at: datetime | None = None) -> bytes:
    """``frame`` as ``fmt``; ``at`` is the snapshot time, where the format records one."""
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "parquet":
        return to_parquet(frame)
    if fmt == "dta":
        return to_dta(frame, labels, at=at)
    raise UnknownFormat(f"unknown export format {fmt!r}; use csv, parquet or dta")

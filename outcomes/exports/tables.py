"""The participant-level export tables: ``participants``, ``assessments_long``,
``scores_wide``, ``adherence`` and ``events``.

Each function takes a :class:`~outcomes.exports.context.Context` and returns a pandas
DataFrame keyed by pseudonym, with dates as days since randomisation and without names,
contact details or free text. Read-only; a fixed number of queries per table.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import Text, cast, select

from core.events import ActivityEvent
from core.extensions import db
from core.models import ConsentRecord, ConsentVersion, Participant
from outcomes import instruments
from outcomes import participants as path
from outcomes.adherence.definitions import DEFINITIONS
from outcomes.assessments.models import AssessmentResponse, ItemAnswer, Timepoint
from outcomes.exports.context import Context, raw_time, read_frame
from outcomes.models import StatusChange, Withdrawal

#: statuses whose first date is exported (as ``day_<status>``)
DATED_STATUSES = (*path.PATH[1:], path.WITHDRAWN)
WITHDRAWAL_KINDS = tuple(path.WITHDRAWAL_KINDS)
#: the withdrawal type of a participant: the widest kind they withdrew from
_WIDEST = ("study", "intervention", "sms")


def stratum_factors(ctx: Context) -> list[str]:
    """The study's stratification factors other than the site (exported as its own column)."""
    return [factor for factor in ctx.study.strata if factor != "site"]


def participants(ctx: Context) -> pd.DataFrame:
    ids = list(ctx.people)
    consent = _consent_versions([p.user_id for p in ctx.people.values()])
    first_status: dict[tuple[int, str], Any] = {}
    for pid, status, at in db.session.execute(
            select(StatusChange.participant_id, StatusChange.to_status, StatusChange.at)
            .join(Participant, Participant.id == StatusChange.participant_id)
            .where(Participant.study_id == ctx.study.id).order_by(StatusChange.at)):
        first_status.setdefault((pid, status), at)
    withdrawals: dict[tuple[int, str], Any] = {}
    for pid, kind, at in db.session.execute(
            select(Withdrawal.participant_id, Withdrawal.kind, Withdrawal.at)
            .join(Participant, Participant.id == Withdrawal.participant_id)
            .where(Participant.study_id == ctx.study.id).order_by(Withdrawal.at)):
        withdrawals.setdefault((pid, kind), at)
    factors = stratum_factors(ctx)
    rows = []
    for pid in ids:
        person = ctx.people[pid]
        row: dict[str, Any] = {
            "pseudonym": ctx.pseudonym(pid), "arm": person.arm, "site": person.site}
        for factor in factors:
            row[f"stratum_{factor}"] = ctx.strata.get(pid, {}).get(factor, "")
        row.update(status=person.status, consent_version=consent.get(person.user_id, ""),
                   randomised=person.randomised_at is not None)
        for status in DATED_STATUSES:
            at = person.randomised_at if status == "randomised" else None
            row[f"day_{status}"] = ctx.day(pid, at or first_status.get((pid, status)))
        for kind in WITHDRAWAL_KINDS:
            row[f"day_withdrew_{kind}"] = ctx.day(pid, withdrawals.get((pid, kind)))
        row["withdrawal_type"] = next(
            (kind for kind in _WIDEST if (pid, kind) in withdrawals), "none")
        rows.append(row)
    columns = ["pseudonym", "arm", "site", *[f"stratum_{f}" for f in factors], "status",
               "consent_version", "randomised", *[f"day_{s}" for s in DATED_STATUSES],
               *[f"day_withdrew_{k}" for k in WITHDRAWAL_KINDS], "withdrawal_type"]
    return pd.DataFrame(rows, columns=columns)


def _consent_versions(user_ids: list[int]) -> dict[int, str]:
    """User id -> the newest consent version they agreed to."""
    found: dict[int, str] = {}
    if not user_ids:
        return found
    for user_id, version in db.session.execute(
            select(ConsentRecord.user_id, ConsentVersion.version)
            .join(ConsentVersion, ConsentVersion.id == ConsentRecord.consent_version_id)
            .where(ConsentRecord.user_id.in_(user_ids)).order_by(ConsentRecord.agreed_at)):
        found[user_id] = version
    return found


def instrument_or_none(instrument_id: str, cache: dict[str, Any]) -> Any:
    if instrument_id not in cache:
        try:
            cache[instrument_id] = instruments.get(instrument_id)
        except instruments.UnknownInstrument:
            cache[instrument_id] = None
    return cache[instrument_id]


ASSESSMENT_COLUMNS = ["pseudonym", "instrument", "instrument_version", "timepoint",
                      "timepoint_position", "item", "reverse_keyed", "raw", "scored",
                      "answered_day", "submitted"]


def assessments_long(ctx: Context) -> pd.DataFrame:
    """One row per item answer, built column-wise (it is the largest table): the answers
    are read narrow (response id, item, value, time) and joined in pandas to the few
    response rows, which is much cheaper than reading every response column per answer."""
    responses = read_frame(
        select(AssessmentResponse.id, AssessmentResponse.participant_id,
               AssessmentResponse.instrument, AssessmentResponse.instrument_version,
               AssessmentResponse.submitted_at.is_not(None), Timepoint.key, Timepoint.position)
        .join(Timepoint, Timepoint.id == AssessmentResponse.timepoint_id)
        .where(Timepoint.study_id == ctx.study.id),
        ["response_id", "pid", "instrument", "version", "submitted", "timepoint",
         "timepoint_position"])
    responses = responses[responses["pid"].isin(list(ctx.people))]
    if responses.empty:
        return pd.DataFrame(columns=ASSESSMENT_COLUMNS)
    answers = read_frame(
        select(ItemAnswer.response_id, ItemAnswer.item, ItemAnswer.value,
               raw_time(ItemAnswer.answered_at))
        .join(AssessmentResponse, AssessmentResponse.id == ItemAnswer.response_id)
        .join(Timepoint, Timepoint.id == AssessmentResponse.timepoint_id)
        .where(Timepoint.study_id == ctx.study.id),
        ["response_id", "item", "raw", "answered_at"])
    raw = answers.merge(responses, on="response_id", how="inner").sort_values(
        ["pid", "timepoint_position", "instrument", "item"], kind="stable")
    if raw.empty:
        return pd.DataFrame(columns=ASSESSMENT_COLUMNS)
    raw = raw.reset_index(drop=True)
    keys, cache = _item_keys(raw)
    raw = raw.merge(keys, on=["instrument", "item"], how="left")
    reverse = raw["reverse"].fillna(False).astype(bool)
    values = raw["raw"].astype("float64")
    scored = values.where(~reverse, raw["constant"] - values) + raw["offset"]
    versions = raw["version"].fillna(raw["instrument"].map(
        {i: (ins.version if ins else "") for i, ins in cache.items()}))
    return pd.DataFrame({
        "pseudonym": ctx.pseudonyms(raw["pid"]), "instrument": raw["instrument"],
        "instrument_version": versions, "timepoint": raw["timepoint"],
        "timepoint_position": raw["timepoint_position"].astype("int64"),
        "item": raw["item"].astype("int64"), "reverse_keyed": reverse,
        "raw": raw["raw"].astype("int64"), "scored": scored.astype("float64"),
        "answered_day": ctx.days(raw["pid"], raw["answered_at"]),
        "submitted": raw["submitted"].astype(bool)}, columns=ASSESSMENT_COLUMNS)


def _item_keys(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(instrument, item, reverse-keyed, min + max, offset) from the definitions, and the
    instruments read; an unknown instrument or item is left out, so it scores as missing
    (NaN) after the left join."""
    cache: dict[str, Any] = {}
    rows = []
    for instrument_id in raw["instrument"].unique():
        instrument = instrument_or_none(instrument_id, cache)
        if instrument is None:
            continue
        rows += [(instrument_id, item.number, item.reverse,
                  float(instrument.min_value + instrument.max_value),
                  float(instrument.item_offset)) for item in instrument.items]
    keys = pd.DataFrame(rows, columns=["instrument", "item", "reverse", "constant", "offset"])
    keys["item"] = keys["item"].astype(raw["item"].dtype)
    keys["instrument"] = keys["instrument"].astype(raw["instrument"].dtype)
    return keys, cache


def score_columns(ctx: Context) -> list[tuple[str, str, str, str]]:
    """(column, instrument id, score name, timepoint key) of every score of the schedule,
    in schedule order: ``<instrument>_<score>_<timepoint>``."""
    cache: dict[str, Any] = {}
    columns = []
    for tp in db.session.scalars(select(Timepoint).where(Timepoint.study_id == ctx.study.id)
                                 .order_by(Timepoint.position, Timepoint.id)):
        for instrument_id in tp.instruments:
            instrument = instrument_or_none(instrument_id, cache)
            names = [rule.name for rule in instrument.rules] if instrument else ["total"]
            for name in names:
                columns.append((f"{instrument_id}_{name}_{tp.key}", instrument_id, name, tp.key))
    return columns


def scores_wide(ctx: Context) -> pd.DataFrame:
    """One row per participant, one column per score of the schedule: totals from one
    column-wise query, further totals and subscales (JSON) read only where present."""
    columns = score_columns(ctx)
    names = [column for column, *_ in columns]
    raw = read_frame(
        select(AssessmentResponse.participant_id, AssessmentResponse.instrument, Timepoint.key,
               AssessmentResponse.total, cast(AssessmentResponse.extra_totals, Text),
               cast(AssessmentResponse.subscales, Text))
        .join(Timepoint, Timepoint.id == AssessmentResponse.timepoint_id)
        .where(Timepoint.study_id == ctx.study.id,
               AssessmentResponse.submitted_at.is_not(None))
        .order_by(AssessmentResponse.id),
        ["pid", "instrument", "timepoint", "total", "extra", "subscales"])
    raw = raw[raw["pid"].isin(list(ctx.people))]
    prefix = raw["instrument"].astype(str) + "_"
    suffix = "_" + raw["timepoint"].astype(str)
    scores = [pd.DataFrame({"pid": raw["pid"], "column": prefix + "total" + suffix,
                            "value": pd.to_numeric(raw["total"], errors="coerce")})]
    scores.append(_json_scores(raw, prefix, suffix))
    found = pd.concat(scores, ignore_index=True).dropna(subset=["value"])
    found = found[found["column"].isin(set(names))].drop_duplicates(
        ["pid", "column"], keep="last")
    people = pd.DataFrame({"pid": pd.Series(list(ctx.people), dtype="int64")})
    frame = people
    if not found.empty:
        wide = found.pivot(index="pid", columns="column", values="value")
        wide.index = wide.index.astype("int64")
        frame = people.merge(wide, left_on="pid", right_index=True, how="left")
    result = pd.DataFrame({"pseudonym": ctx.pseudonyms(people["pid"]) if len(people)
                           else pd.Series([], dtype="str"),
                           "arm": [p.arm for p in ctx.people.values()]})
    for column in names:
        result[column] = (frame[column] if column in frame.columns
                          else pd.Series(float("nan"), index=frame.index)).astype("float64")
    return result[["pseudonym", "arm", *names]]


def _json_scores(raw: pd.DataFrame, prefix: pd.Series, suffix: pd.Series) -> pd.DataFrame:
    """(pid, column, value) of the further totals and subscales, read as JSON text (cast
    in SQL, so PostgreSQL's driver does not decode every row): empty objects are skipped
    without decoding."""
    rows = []
    for source in ("extra", "subscales"):
        texts = raw[source]
        for index, value in texts[texts.notna() & ~texts.isin(["{}", "null"])].items():
            found = json.loads(value)
            for name, score in (found or {}).items():
                if score is not None:
                    rows.append((raw.at[index, "pid"], f"{prefix[index]}{name}{suffix[index]}",
                                 float(score)))
    return pd.DataFrame(rows, columns=["pid", "column", "value"])


#: adherence fields dropped (the participant id) or re-expressed as days since randomisation
_ADHERENCE_DROPPED = ("participant_id", "week", "period_start", "period_end", "last_active_at")


def adherence_columns() -> list[str]:
    from dataclasses import fields

    from outcomes.adherence.metrics import Adherence

    kept = [f.name for f in fields(Adherence) if f.name not in _ADHERENCE_DROPPED]
    return ["pseudonym", *kept, "period_end_day", "last_active_day"]


def adherence(ctx: Context) -> pd.DataFrame:
    rows = []
    # in participant order: the export must not follow the database's physical row order
    # (a restored backup has another one, and the same data must give the same checksum)
    for pid, figures in sorted(ctx.adherence_figures().items()):
        if pid not in ctx.people:
            continue
        row = figures.as_row()
        row["period_end_day"] = ctx.day(pid, row["period_end"])
        row["last_active_day"] = ctx.day(pid, row["last_active_at"])
        for name in _ADHERENCE_DROPPED:
            row.pop(name, None)
        rows.append({"pseudonym": ctx.pseudonym(pid), **row})
    frame = pd.DataFrame(rows, columns=adherence_columns())
    for name, meta in DEFINITIONS.items():
        if name in frame.columns and meta["type"] in _DTYPES:
            frame[name] = frame[name].astype(_DTYPES[meta["type"]])
    return frame


#: codebook type -> pandas dtype (nullable, so an empty figure stays empty)
_DTYPES = {"integer": "Int64", "number": "float64", "boolean": "boolean"}


def events(ctx: Context) -> pd.DataFrame:
    """One row per activity event, built column-wise from one query."""
    raw = read_frame(
        select(ActivityEvent.participant_id, ActivityEvent.kind, raw_time(ActivityEvent.at))
        .join(Participant, Participant.id == ActivityEvent.participant_id)
        .where(Participant.study_id == ctx.study.id)
        .order_by(ActivityEvent.participant_id, ActivityEvent.at, ActivityEvent.id),
        ["pid", "kind", "at"])
    if raw.empty:
        return pd.DataFrame(columns=["pseudonym", "kind", "day"])
    return pd.DataFrame({"pseudonym": ctx.pseudonyms(raw["pid"]), "kind": raw["kind"],
                         "day": ctx.days(raw["pid"], raw["at"])})

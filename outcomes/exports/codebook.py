"""The codebook: one row per column of every export table (label, type, allowed values and,
for scores, the instrument version and the scoring and missing-data rules).

``describe`` raises :class:`MissingDefinition` for a column nobody described, so a new
column cannot leave without its codebook row (the tests build every table). Read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from core.events import KINDS
from outcomes import scoring
from outcomes.adherence.definitions import DEFINITIONS
from outcomes.exports import tables
from outcomes.exports.context import Context

COLUMNS = ["table", "variable", "label", "type", "values", "instrument_version",
           "scoring_rule", "missing_rule"]

DAYS = "days since randomisation (fractional; empty when not randomised or not reached)"
PSEUDONYM = ("Pseudonym", "string",
             "P- and 12 hex digits: keyed HMAC-SHA256 of the participant id with the study's "
             "secret; the same in every export of the study")
BOOLEAN = "True or False (1 or 0 in Stata; empty when unknown)"
ARM = ("Arm (code)", "string", "an arm code of the study; empty before randomisation")


#: the adherence codebook's type names -> this codebook's
_ADHERENCE_TYPES = {"number": "float", "text": "string"}


class MissingDefinition(KeyError):
    """An export column has no codebook entry."""


def _fixed() -> dict[str, dict[str, tuple[str, str, str]]]:
    # read when a codebook is made, not at import (see ``activity.moderation``)
    from moderation.care_models import CHECKIN_CHANNELS, CHECKIN_OUTCOMES, CHECKIN_REASONS

    kinds = ", ".join(sorted(KINDS))
    statuses = ", ".join((*tables.path.PATH, tables.path.WITHDRAWN))
    fixed: dict[str, dict[str, tuple[str, str, str]]] = {
        "participants": {
            "pseudonym": PSEUDONYM, "arm": ARM,
            "site": ("Recruiting site (stratum)", "string", "a site of the study, or empty"),
            "status": ("Current status on the participant path", "string", statuses),
            "consent_version": ("Consent version agreed to (newest)", "string",
                                "a published consent version, or empty"),
            "randomised": ("Randomised", "boolean", BOOLEAN),
            "withdrawal_type": ("Widest withdrawal", "string",
                                "study, intervention, sms or none"),
        },
        "assessments_long": {
            "pseudonym": PSEUDONYM,
            "instrument": ("Instrument id", "string", "an instrument id, e.g. ucla3, mspss"),
            "instrument_version": ("Instrument definition version", "string", "e.g. 1.0"),
            "timepoint": ("Timepoint key", "string", "a timepoint key of the schedule"),
            "timepoint_position": ("Timepoint order in the schedule", "integer", "0 or more"),
            "item": ("Item number", "integer", "1 or more"),
            "reverse_keyed": ("Item is reverse-keyed", "boolean", BOOLEAN),
            "raw": ("Answer as given (response option value)", "integer",
                    "the instrument's option values"),
            "scored": ("Item score after reverse keying and offset", "float",
                       "see the instrument's scoring rule"),
            "answered_day": ("When the answer was saved", "float", DAYS),
            "submitted": ("The questionnaire was submitted", "boolean", BOOLEAN),
        },
        "scores_wide": {"pseudonym": PSEUDONYM, "arm": ARM},
        "adherence": {
            "pseudonym": PSEUDONYM,
            "period_end_day": ("Period end (excluded): when the figures were computed",
                               "float", DAYS),
            "last_active_day": ("Last use of the platform", "float", DAYS),
        },
        "events": {
            "pseudonym": PSEUDONYM,
            "kind": ("Activity event kind", "string", kinds),
            "day": ("When it happened", "float", DAYS),
        },
        "sms": {
            "pseudonym": PSEUDONYM,
            "prompt_key": ("Prompt of the SMS protocol", "string", "a prompt key"),
            "protocol_version": ("SMS protocol version", "integer", "1 or more"),
            "planned_day": ("When the prompt was planned to go out", "float", DAYS),
            "sent": ("The prompt reached the network (queued, sent or delivered)", "boolean",
                     BOOLEAN),
            "delivered": ("Delivery was confirmed by the carrier", "boolean", BOOLEAN),
            "answered": ("A readable answer came before the prompt expired", "boolean",
                         BOOLEAN),
            "late": ("A reply came after the prompt expired (not scored)", "boolean",
                     BOOLEAN),
            "expired": ("The prompt closed without an answer", "boolean", BOOLEAN),
            "value": ("The answer's analysed value (scale value, 1/0 for yes/no, instrument "
                      "total)", "float", "empty when not answered"),
            "latency_seconds": ("Seconds from sending (or planning) to the answer", "float",
                                "0 or more; empty when not answered"),
        },
        "moderation": {
            "pseudonym": PSEUDONYM,
            "record": ("Kind of record", "string", "flag (review queue item), alert "
                       "(risk alert), checkin (check-in task) or messages (moderator "
                       "messages of one participant, counted)"),
            "channel": ("Flags and alerts: where the content was written; check-ins: how "
                        "the moderator got in touch", "string",
                        "forum_post, forum_comment, reflection, sms (flags, alerts); "
                        f"{', '.join(CHECKIN_CHANNELS)} or empty (check-ins)"),
            "source": ("What raised it", "string", "screening or report (flags); screening "
                       "(alerts); rule or moderator (check-ins)"),
            "category": ("Watched-word category", "string",
                         "self_harm, harm_to_others, harassment, personal_info, spam, or empty"),
            "severity": ("Severity", "float", "1 low, 2 medium, 3 high; empty for alerts"),
            "is_risk": ("Counted as risk", "boolean", BOOLEAN),
            "screening_action": ("What screening did", "string", "flag, hold, or empty"),
            "status": ("Status now", "string",
                       "open, approved, hidden, redacted, escalated, closed (flags); open, "
                       "acknowledged, resolved (alerts); open, done, cancelled (check-ins)"),
            "day": ("When it was raised", "float", DAYS),
            "response_hours": ("Hours until a moderator handled the flag, a clinician "
                               "acknowledged the alert, or the check-in was completed",
                               "float", "empty while open"),
            "escalation_level": ("Alert escalation step now", "float",
                                 "0 on-call, 1 next on the rota, 2 all clinicians"),
            "acknowledged_hours": ("Hours until the alert was acknowledged", "float",
                                   "empty while unacknowledged"),
            "resolved_hours": ("Hours until the alert was resolved", "float",
                               "empty while unresolved"),
            "actions_taken": ("Clinician's actions (codes, ; separated)", "string",
                              "contacted_participant, safety_plan_reviewed, "
                              "emergency_services, no_action_needed"),
            "possible_adverse_event": ("Clinician marked a possible adverse event", "string",
                                       "yes, no, unknown (flags and alerts); empty for "
                                       "check-ins and message counts"),
            "reason": ("Why the check-in task was made", "string",
                       f"{', '.join(CHECKIN_REASONS)}; empty for other records"),
            "due_day": ("When the check-in was due", "float", DAYS),
            "completed_day": ("When the check-in was completed or cancelled", "float",
                              DAYS + "; empty while open"),
            "outcome": ("What came of the check-in", "string",
                        f"{', '.join(CHECKIN_OUTCOMES)}, or empty"),
            "messages_to_participant": ("Moderator messages sent to the participant", "float",
                                        "0 or more (messages rows); empty otherwise"),
            "messages_from_participant": ("Messages the participant sent the moderators",
                                          "float", "0 or more (messages rows); empty "
                                          "otherwise"),
        },
        "consort": {
            "stage": ("CONSORT stage", "string", "enrolled, consented, baseline_done, "
                      "withdrew_before, allocated, received, not_received, "
                      "withdrew_intervention, withdrew_sms, withdrew_study, lost, "
                      "stopped_using, analysed"),
            "order": ("Order of the stage in the flow", "integer", "0 or more"),
            "label": ("Stage as the dashboard names it", "string", "text"),
            "arm": ("Arm (code)", "string", "an arm code, or all"),
            "count": ("Participants", "integer", "0 or more"),
            "note": ("How the stage is counted", "string", "text or empty"),
        },
        "codebook": {name: (name.replace("_", " ").capitalize(), "string", "text")
                     for name in COLUMNS},
    }
    for status in tables.DATED_STATUSES:
        fixed["participants"][f"day_{status}"] = (
            f"First reached status {status}", "float", DAYS)
    for kind in tables.WITHDRAWAL_KINDS:
        fixed["participants"][f"day_withdrew_{kind}"] = (
            f"Withdrew from: {kind}", "float", DAYS)
    for name, meta in DEFINITIONS.items():
        type_ = _ADHERENCE_TYPES.get(meta["type"], meta["type"])
        values = BOOLEAN if type_ == "boolean" else meta["values"]
        fixed["adherence"].setdefault(name, (meta["label"], type_, values))
    return fixed


def _entry(table: str, variable: str, label: str, type_: str, values: str,
           **extra: str) -> dict[str, str]:
    return {"table": table, "variable": variable, "label": label, "type": type_,
            "values": values, "instrument_version": extra.get("version", ""),
            "scoring_rule": extra.get("scoring", ""), "missing_rule": extra.get("missing", "")}


def _score_entries(ctx: Context) -> dict[str, dict[str, str]]:
    cache: dict[str, Any] = {}
    found = {}
    for column, instrument_id, name, tp in tables.score_columns(ctx):
        instrument = tables.instrument_or_none(instrument_id, cache)
        if instrument is None:
            found[column] = _entry("scores_wide", column, f"{instrument_id} {name} at {tp}",
                                   "float", "as stored")
            continue
        rule = instrument.rule(name)
        low, high = instrument.score_range(rule)
        found[column] = _entry(
            "scores_wide", column, f"{instrument.short_name} {name} at timepoint {tp}", "float",
            f"{float(low):g} to {float(high):g}; empty when missing",
            version=instrument.version,
            scoring=(f"{instrument.short_name} {instrument.version}: "
                     f"{scoring.describe_items(instrument)}; {scoring.describe_rule(rule)}"),
            missing=scoring.describe_missing_rule(rule))
    return found


def describe(ctx: Context, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The codebook of ``frames`` (table name -> DataFrame) plus its own columns."""
    fixed = _fixed()
    scores = _score_entries(ctx)
    rows = []
    for table, frame in [*frames.items(), ("codebook", pd.DataFrame(columns=COLUMNS))]:
        for column in frame.columns:
            if table == "scores_wide" and column in scores:
                rows.append(scores[column])
            elif table == "participants" and column.startswith("stratum_"):
                factor = column.removeprefix("stratum_")
                levels = ", ".join(ctx.study.stratum_levels.get(factor, []))
                rows.append(_entry(table, column, f"Stratum: {factor}", "string",
                                   levels or "a level of the factor"))
            elif column in fixed.get(table, {}):
                rows.append(_entry(table, column, *fixed[table][column]))
            else:
                raise MissingDefinition(f"{table}.{column} has no codebook entry")
    return pd.DataFrame(rows, columns=COLUMNS)

"""The export tables on a constructed study: each table's columns and values, a codebook
row for every column, and pseudonyms that are stable, keyed and secret."""

from __future__ import annotations

import hashlib
import hmac
import math

import pandas as pd
import pytest

from core import clock
from core.extensions import db
from core.models import SiteSetting
from outcomes import exports
from outcomes.exports import codebook, pseudonyms
from outcomes.models import Study
from tests.factories import make_study
from tests.outcomes.exports.seed import FORMULA_SITE, NOW, seed_study

COLUMNS = {
    "participants": [
        "pseudonym", "arm", "site", "stratum_baseline_loneliness", "status", "consent_version",
        "randomised", "day_consented", "day_baseline_done", "day_randomised", "day_active",
        "day_completed", "day_withdrawn", "day_withdrew_intervention", "day_withdrew_study",
        "day_withdrew_sms", "withdrawal_type"],
    "assessments_long": [
        "pseudonym", "instrument", "instrument_version", "timepoint", "timepoint_position",
        "item", "reverse_keyed", "raw", "scored", "answered_day", "submitted"],
    "scores_wide": ["pseudonym", "arm", "ucla3_total_baseline", "ucla3_total_week6"],
    "events": ["pseudonym", "kind", "day"],
    "sms": ["pseudonym", "prompt_key", "protocol_version", "planned_day", "sent", "delivered",
            "answered", "late", "expired", "value", "latency_seconds"],
    "moderation": [
        "pseudonym", "record", "channel", "source", "category", "severity", "is_risk",
        "screening_action", "status", "day", "response_hours", "escalation_level",
        "acknowledged_hours", "resolved_hours", "actions_taken", "possible_adverse_event",
        "reason", "due_day", "completed_day", "outcome", "messages_to_participant",
        "messages_from_participant"],
    "consort": ["stage", "order", "label", "arm", "count", "note"],
    "codebook": codebook.COLUMNS,
}


@pytest.fixture
def built(app):
    clock.set_time(NOW)
    with app.app_context():
        ids = seed_study()
        ctx, frames = exports.tables_for(db.session.get(Study, ids["study"]))
        db.session.commit()
        names = {key: ctx.pseudonym(value) for key, value in ids.items() if key[0] == "p"}
        yield ids, names, frames


def row(frame: pd.DataFrame, pseudonym: str) -> pd.Series:
    rows = frame[frame["pseudonym"] == pseudonym]
    assert len(rows) == 1
    return rows.iloc[0]


def test_every_table_is_built_with_its_columns(built):
    """It builds every registered table and the codebook, each with the documented columns."""
    _ids, _names, frames = built
    assert list(frames) == list(exports.NAMES)
    for name, columns in COLUMNS.items():
        assert list(frames[name].columns) == columns, name
    assert "participant_id" not in frames["adherence"].columns
    assert {"pseudonym", "arm", "adherence_ratio", "received_intervention", "period_end_day",
            "last_active_day"} <= set(frames["adherence"].columns)


def test_every_column_of_every_table_has_a_codebook_row(built):
    _ids, _names, frames = built
    book = frames["codebook"]
    described = set(zip(book["table"], book["variable"], strict=True))
    for name, frame in frames.items():
        for column in frame.columns:
            assert (name, column) in described, f"{name}.{column}"
    assert len(described) == len(book)
    assert (book["label"].str.len() > 0).all() and (book["values"].str.len() > 0).all()
    # no datetime leaves: dates are days since randomisation
    assert set(book["type"]) == {"string", "integer", "float", "boolean"}


def test_score_columns_carry_version_and_rules(built):
    book = built[2]["codebook"].set_index(["table", "variable"])
    entry = book.loc[("scores_wide", "ucla3_total_week6")]
    assert entry["instrument_version"] == "1.0"
    assert "sum of items 1-3" in entry["scoring_rule"] or "sum of items" in entry["scoring_rule"]
    assert entry["missing_rule"].startswith("total:")
    assert entry["values"].startswith("3 to 9")


def test_a_column_without_a_codebook_entry_is_refused(app):
    with app.app_context():
        ctx = exports.for_study(make_study())
        frame = pd.DataFrame({"pseudonym": [], "secret_column": []})
        with pytest.raises(codebook.MissingDefinition, match="events.secret_column"):
            codebook.describe(ctx, {"events": frame})


def test_participants_table(built):
    _ids, names, frames = built
    table = frames["participants"]
    assert len(table) == 3
    first, second, invited = (row(table, names[p]) for p in ("p1", "p2", "p3"))
    assert (first["arm"], first["site"], first["stratum_baseline_loneliness"]) == (
        "guided", "North", "high")
    assert first["consent_version"] == "1.0" and bool(first["randomised"])
    assert first["day_randomised"] == 0.0 and first["day_baseline_done"] == -2.0
    assert first["withdrawal_type"] == "none" and math.isnan(first["day_withdrew_study"])
    assert second["site"] == FORMULA_SITE and second["status"] == "withdrawn"
    assert (second["withdrawal_type"], second["day_withdrew_study"]) == ("study", 9.0)
    assert second["day_withdrawn"] == 10.0
    assert not invited["randomised"] and invited["arm"] == ""
    assert math.isnan(invited["day_randomised"]) and invited["status"] == "invited"


def test_assessment_tables(built):
    _ids, names, frames = built
    long = frames["assessments_long"]
    mine = long[long["pseudonym"] == names["p1"]]
    assert list(mine["timepoint"]) == ["baseline"] * 3 + ["week6"] * 3
    assert list(mine["raw"]) == [2, 3, 1, 1, 1, 2]
    assert list(mine["scored"]) == [2.0, 3.0, 1.0, 1.0, 1.0, 2.0]
    assert list(mine["answered_day"]) == [-1.0] * 3 + [43.0] * 3
    assert mine["submitted"].all() and (mine["instrument_version"] == "1.0").all()
    unsubmitted = long[long["pseudonym"] == names["p2"]]
    assert list(unsubmitted["raw"]) == [3] and not unsubmitted["submitted"].any()
    wide = frames["scores_wide"]
    assert (row(wide, names["p1"])["ucla3_total_baseline"],
            row(wide, names["p1"])["ucla3_total_week6"]) == (6.0, 4.0)
    assert math.isnan(row(wide, names["p2"])["ucla3_total_baseline"])
    assert len(wide) == 3


def test_events_and_adherence_use_days_since_randomisation(built):
    _ids, names, frames = built
    events = frames["events"]
    assert list(events[events["pseudonym"] == names["p1"]][["kind", "day"]].itertuples(
        index=False, name=None)) == [("login", -1.0), ("step_completed", 0.5)]
    assert list(events[events["pseudonym"] == names["p2"]]["day"]) == [2.0]
    adherence = frames["adherence"]
    assert set(adherence["pseudonym"]) == {names["p1"], names["p2"]}
    assert row(adherence, names["p1"])["period_end_day"] == 60.0
    assert row(adherence, names["p1"])["arm"] == "guided"


def test_sms_table(built):
    _ids, names, frames = built
    sms = frames["sms"]
    assert list(sms["pseudonym"]) == [names["p1"]] * 2
    answered, expired = sms.iloc[0], sms.iloc[1]
    assert (answered["planned_day"], bool(answered["sent"]), bool(answered["delivered"]),
            bool(answered["answered"]), bool(answered["expired"])) == (1.0, True, True, True,
                                                                       False)
    assert (answered["value"], answered["latency_seconds"]) == (7.0, 120.0)
    assert (bool(expired["sent"]), bool(expired["answered"]), bool(expired["expired"])) == (
        False, False, True)
    assert math.isnan(expired["value"]) and int(answered["protocol_version"]) == 1


def test_moderation_table(built):
    _ids, names, frames = built
    table = frames["moderation"]
    flag = table[table["record"] == "flag"].iloc[0]
    alert = table[table["record"] == "alert"].iloc[0]
    assert (flag["pseudonym"], flag["category"], flag["severity"], flag["day"],
            flag["response_hours"], flag["status"]) == (names["p1"], "self_harm", 3.0, 3.0, 2.0,
                                                        "approved")
    assert (alert["acknowledged_hours"], alert["escalation_level"], alert["actions_taken"],
            alert["possible_adverse_event"], alert["status"]) == (
        0.5, 0.0, "contacted_participant", "yes", "acknowledged")
    assert math.isnan(alert["resolved_hours"])


def test_moderation_table_has_check_ins_and_message_counts_without_text(built):
    """It lists each check-in task (reason, status, days since randomisation, channel,
    outcome) and one row of message counts per participant, with no note or body."""
    _ids, names, frames = built
    table = frames["moderation"]
    done, open_ = (table[table["record"] == "checkin"].iloc[i] for i in (0, 1))
    assert (done["pseudonym"], done["reason"], done["status"], done["day"], done["due_day"],
            done["completed_day"], done["channel"], done["outcome"], done["source"],
            done["response_hours"]) == (names["p1"], "inactive", "done", 4.0, 6.0, 5.0,
                                        "in_app", "reached", "rule", 24.0)
    assert (open_["reason"], open_["status"], open_["channel"], open_["outcome"],
            open_["source"]) == ("manual", "open", "", "", "moderator")
    assert math.isnan(open_["completed_day"]) and open_["due_day"] == 9.0
    [counts] = table[table["record"] == "messages"].to_dict("records")
    assert (counts["pseudonym"], counts["messages_to_participant"],
            counts["messages_from_participant"]) == (names["p1"], 2.0, 1.0)
    flat = table.astype(str).to_string()
    for text in ("pewter heron", "indigo pancake", "mossy tuba"):
        assert text not in flat


def test_consort_table_matches_the_dashboard_flow(built):
    frames = built[2]
    consort = frames["consort"].set_index(["stage", "arm"])["count"]
    assert consort[("enrolled", "all")] == 3
    assert consort[("allocated", "all")] == 2
    assert (consort[("allocated", "guided")], consort[("allocated", "self")]) == (1, 1)
    assert consort[("withdrew_study", "self")] == 1


def test_pseudonyms_are_stable_keyed_and_secret(app):
    clock.set_time(NOW)
    with app.app_context():
        ids = seed_study()
        study = db.session.get(Study, ids["study"])
        first = exports.tables_for(study)[1]["participants"]["pseudonym"].tolist()
        second = exports.tables_for(study)[1]["participants"]["pseudonym"].tolist()
        assert first == second and len(set(first)) == 3
        assert all(name.startswith("P-") and len(name) == 14 for name in first)
        key = pseudonyms.key_for(study)
        assert len(key) == 32
        expected = "P-" + hmac.new(key, f"participant:{ids['p1']}".encode(),
                                   hashlib.sha256).hexdigest()[:12]
        assert expected == first[0]
        unkeyed = {hashlib.sha256(text.encode()).hexdigest()[:12] for text in (
            str(ids["p1"]), f"participant:{ids['p1']}", "T-0001")}
        assert first[0][2:] not in unkeyed
        other = make_study(slug="other", name="Other study")
        other_key = pseudonyms.key_for(other)
        assert other_key != key
        assert pseudonyms.pseudonym(other_key, ids["p1"]) != first[0]
        db.session.commit()
        # the secret is kept, not re-made, and no page setting shows it
        stored = db.session.get(SiteSetting, pseudonyms.setting_key(study)).value
        assert bytes.fromhex(stored) == key
        from core import settings
        with pytest.raises(KeyError):
            settings.put(pseudonyms.setting_key(study), "00", actor=None)


def test_an_empty_study_exports_empty_tables_with_their_columns(app):
    with app.app_context():
        study = make_study()
        _ctx, frames = exports.tables_for(study)
        for name in ("participants", "assessments_long", "events", "sms", "moderation",
                     "adherence"):
            assert frames[name].empty, name
        assert list(frames["sms"].columns) == COLUMNS["sms"]
        assert frames["consort"].set_index(["stage", "arm"])["count"][("enrolled", "all")] == 0


def test_the_number_of_queries_does_not_grow_with_the_study(app):
    """It reads each table in a fixed number of queries, whatever the number of
    participants (so a 10,000-participant export is not 10,000 round trips)."""
    from core.events import ActivityEvent
    from tests.factories import make_participant
    from tests.modules.content_rows import count_queries
    from tests.outcomes.exports.seed import DAY, R

    clock.set_time(NOW)
    with app.app_context():
        ids = seed_study()
        study = db.session.get(Study, ids["study"])
        exports.tables_for(study)  # makes the secret and warms the caches
        db.session.commit()
        with count_queries() as small:
            exports.tables_for(study)
        for n in range(4, 10):
            extra = make_participant(study, f"T-{n:04d}", name=None, arm="self")
            extra.randomised_at, extra.status = R + n * DAY, "active"
            db.session.add(ActivityEvent(participant_id=extra.id, kind="login", at=R + 5 * n * DAY))
        db.session.commit()
        with count_queries() as large:
            _ctx, frames = exports.tables_for(study)
        assert len(frames["participants"]) == 9
        assert len(large) == len(small)


def test_reverse_keyed_items_are_scored_as_the_scoring_engine_does(app):
    from outcomes import instruments, scoring
    from outcomes.assessments.models import AssessmentResponse, ItemAnswer, Timepoint

    clock.set_time(NOW)
    with app.app_context():
        ids = seed_study()
        ucla20 = instruments.get("ucla20")
        tp = db.session.scalar(db.select(Timepoint).where(Timepoint.key == "baseline"))
        response = AssessmentResponse(participant_id=ids["p1"], timepoint_id=tp.id,
                                      instrument="ucla20")
        db.session.add(response)
        db.session.flush()
        answers = {item.number: 1 + item.number % 4 for item in ucla20.items}
        db.session.add_all([ItemAnswer(response_id=response.id, item=n, value=v)
                            for n, v in answers.items()])
        db.session.commit()
        long = exports.tables_for(db.session.get(Study, ids["study"]))[1]["assessments_long"]
    mine = long[long["instrument"] == "ucla20"]
    assert len(mine) == 20 and mine["reverse_keyed"].sum() == len(ucla20.reverse_items) > 0
    for item in ucla20.items:
        scored = mine[mine["item"] == item.number]["scored"].item()
        assert scored == scoring.item_score(ucla20, item, answers[item.number])
    assert (mine["instrument_version"] == ucla20.version).all()
    assert not mine["submitted"].any()


def test_scores_wide_has_further_totals_and_subscales(app):
    """It spreads the stored JSON further totals and subscales into their own columns (and
    leaves a subscale empty when it was not computed)."""
    from outcomes.assessments.models import AssessmentResponse, Timepoint

    clock.set_time(NOW)
    with app.app_context():
        ids = seed_study()
        study = db.session.get(Study, ids["study"])
        tp = Timepoint(study_id=study.id, key="week12", label="Week 12", position=2,
                       instruments=["mspss"])
        db.session.add(tp)
        db.session.flush()
        db.session.add(AssessmentResponse(
            participant_id=ids["p1"], timepoint_id=tp.id, instrument="mspss", started_at=NOW,
            submitted_at=NOW, total=5.5, extra_totals={"total_sum": 66.0},
            subscales={"significant_other": 6.0, "family": 4.5, "friends": None}))
        db.session.add(AssessmentResponse(
            participant_id=ids["p2"], timepoint_id=tp.id, instrument="mspss", started_at=NOW,
            submitted_at=NOW, total=3.0, extra_totals={}, subscales={}))
        ctx, frames = exports.tables_for(study)
        wide = frames["scores_wide"].set_index("pseudonym")
        p1, p2 = ctx.pseudonym(ids["p1"]), ctx.pseudonym(ids["p2"])
        assert wide.loc[p1, ["mspss_total_week12", "mspss_total_sum_week12",
                             "mspss_significant_other_week12",
                             "mspss_family_week12"]].tolist() == [5.5, 66.0, 6.0, 4.5]
        assert math.isnan(wide.loc[p1, "mspss_friends_week12"])
        assert wide.loc[p2, "mspss_total_week12"] == 3.0
        assert math.isnan(wide.loc[p2, "mspss_total_sum_week12"])
        assert wide.loc[p1, "ucla3_total_week6"] == 4.0  # ucla3 answers 1, 1, 2
        db.session.rollback()

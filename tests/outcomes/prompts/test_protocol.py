"""The protocol as data: checking, line numbers, versions, export and the change rule."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.audit import AuditEntry
from core.extensions import db
from core.roles import Role
from outcomes.prompts import protocol
from outcomes.prompts.models import SmsProtocolVersion
from tests.factories import make_staff, make_study


def default():
    return copy.deepcopy(protocol.default_data())


def test_the_shipped_default_is_valid_and_has_the_three_prompts():
    assert protocol.check_protocol(default()) == []
    read = protocol.read_protocol(default())
    assert [p.key for p in read.prompts] == ["lonely", "talked", "ucla3"]
    assert read.prompt("ucla3").answer.instrument == "ucla3"
    assert read.prompt("ucla3").weekdays == (6,)
    assert read.duration_days == 84


def _with(change):
    data = default()
    change(data)
    return protocol.check_protocol(data)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["prompts"][0].update(at="07:30"), "outside the hours texts may be sent"),
    (lambda d: d["prompts"][0].update(at="21:30"), "outside the hours texts may be sent"),
    (lambda d: d["prompts"][0].update(at=1020), "write the time in quotes"),
    (lambda d: d["prompts"][0].update(at="9am"), "24-hour time"),
    (lambda d: d["prompts"][0].update(between=["10:00", "12:00"]), "not both"),
    (lambda d: d["prompts"][1].update(between=["19:00", "18:00"]), "end after it starts"),
    (lambda d: d["prompts"][0].update(expire_minutes=0), "expire_minutes must be"),
    (lambda d: d["prompts"][0]["reminder"].update(after_minutes=120), "before the prompt expires"),
    (lambda d: d["prompts"][0]["answer"].update(type="slider"), "answer type must be"),
    (lambda d: d["prompts"][0]["answer"].update(min=10), "max must be greater than min"),
    (lambda d: d["prompts"][2]["answer"].update(count=4), "use count: 3"),
    (lambda d: d["prompts"][2]["answer"].update(instrument="nope"), "unknown instrument"),
    (lambda d: d["prompts"][1].update(days="fortnightly"), "days must be"),
    (lambda d: d["prompts"][2].pop("weekday"), "weekly needs weekday"),
    (lambda d: d["prompts"][1].update(key="talked today"), "key must be"),
    (lambda d: d["prompts"][1].update(key="lonely"), "used twice"),
    (lambda d: d["prompts"][0].update(colour="blue"), "unknown key 'colour'"),
    (lambda d: d["prompts"][0].update(text="x" * 400), "too long"),
    (lambda d: d["prompts"][0]["feedback"][0].update(when={"equals": "yes"}), "must be a number"),
    (lambda d: d["prompts"][1]["feedback"][0].update(when={"at_least": 3}), "yes/no answer"),
    (lambda d: d["prompts"][0]["feedback"][0].update(step="https://example.org"),
     "module-id/step-id"),
    (lambda d: d.update(prompts=[]), "one or more prompts"),
])
def test_a_bad_definition_is_reported(change, expected):
    problems = _with(change)
    assert problems, expected
    assert any(expected in problem for problem in problems), problems


def test_a_mapping_is_required():
    assert protocol.check_protocol(["not", "a", "mapping"])
    with pytest.raises(protocol.ProtocolError):
        protocol.read_protocol(None)


def test_problems_in_typed_yaml_carry_their_line_numbers():
    text = protocol.default_text().replace('at: "09:00"', 'at: "07:00"')
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"07:00"' in row)
    data, problems = protocol.check_text(text)
    assert data is not None
    assert problems == [f"line {line}: prompt [1].at: at 07:00 is outside the hours texts may "
                        "be sent (08:00-21:00 local time)"]


def test_broken_yaml_is_reported_at_its_line():
    data, problems = protocol.check_text("name: test\nprompts:\n  - key: [lonely\n    at: x\n")
    assert data is None
    assert len(problems) == 1 and problems[0].startswith("line 4: YAML error")


def test_versions_are_kept_with_who_and_when(app):
    with app.app_context():
        study = make_study()
        researcher = make_staff(Role.RESEARCHER, "r@example.org")
        assert protocol.export_protocol(study) is None
        protocol.apply_protocol(study, default(), actor=researcher)
        protocol.apply_protocol(study, default(), actor=researcher)  # unchanged: no new version
        changed = default()
        changed["prompts"][0]["text"] = "How lonely did you feel today? Reply 0 to 10."
        protocol.apply_protocol(study, changed, actor=researcher)
        db.session.commit()
        versions = protocol.versions_of(study)
        assert [(v.version, v.created_by_id) for v in versions] == [(2, researcher.id),
                                                                   (1, researcher.id)]
        assert protocol.export_protocol(study) == changed
        assert protocol.check_protocol(protocol.export_protocol(study)) == []
        actions = db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.action == "sms_protocol.saved")).all()
        assert len(actions) == 2


def test_a_bad_protocol_is_not_saved(app):
    with app.app_context():
        study = make_study()
        data = default()
        data["prompts"][0]["at"] = "23:00"
        with pytest.raises(protocol.ProtocolError) as caught:
            protocol.apply_protocol(study, data, actor=None)
        assert "outside the hours" in str(caught.value)
        assert db.session.scalar(select(SmsProtocolVersion)) is None


def test_once_enrolment_opened_measures_cannot_change(app):
    with app.app_context():
        study = make_study()
        protocol.apply_protocol(study, default(), actor=None)
        study.enrolment_opened_at = datetime(2026, 11, 1, tzinfo=UTC)
        db.session.commit()
        retimed = default()
        retimed["prompts"][0]["at"] = "10:00"
        retimed["prompts"].append({**default()["prompts"][0], "key": "lonely_evening",
                                   "at": "20:00"})
        assert protocol.protocol_change_refusal(study, retimed) is None
        removed = default()
        removed["prompts"].pop(1)
        assert "talked cannot be removed" in protocol.protocol_change_refusal(study, removed)
        rescaled = default()
        rescaled["prompts"][0]["answer"]["max"] = 5
        assert "lonely cannot change" in protocol.protocol_change_refusal(study, rescaled)
        with pytest.raises(protocol.ProtocolError):
            protocol.apply_protocol(study, rescaled, actor=None)


def test_before_enrolment_anything_valid_may_change(app):
    with app.app_context():
        study = make_study()
        protocol.apply_protocol(study, default(), actor=None)
        removed = default()
        removed["prompts"].pop(1)
        assert protocol.protocol_change_refusal(study, removed) is None


def test_the_same_protocol_from_the_set_up_yaml_is_not_a_new_version(app):
    with app.app_context():
        study = make_study()
        protocol.save_protocol_text(study, protocol.default_text(), actor=None)
        protocol.apply_protocol(study, protocol.export_protocol(study), actor=None)
        assert protocol.save_protocol_text(study, protocol.default_text(), actor=None) is None
        commented = "# reviewed by the trial steering committee\n" + protocol.default_text()
        assert protocol.save_protocol_text(study, commented, actor=None).version == 2
        assert protocol.versions_of(study)[0].source == commented


def test_problems_are_listed_in_line_order():
    text = ("name: x\nprompts:\n  - key: a\n    at: 17:00\n    text: hi\n"
            "  - key: b\n    at: \"07:00\"\n")
    _, problems = protocol.check_text(text)
    lines = [int(problem.split(":")[0].removeprefix("line ")) for problem in problems]
    assert lines == sorted(lines)
    assert "line 4: prompt [1].at: write the time in quotes" in "\n".join(problems)
    assert "line 7: prompt [2].at: at 07:00 is outside" in "\n".join(problems)

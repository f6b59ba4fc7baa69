"""The hash-chained audit log: building the chain, ``flask audit verify``, tampering,
the actions that must be audited, and concurrent appenders."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text

from core import audit
from core.audit import GENESIS, AuditEntry, AuditHead
from core.extensions import db
from core.roles import Role
from tests.factories import make_consent, make_participant, make_staff, make_study

ROOT = Path(__file__).resolve().parents[2]
PER_WORKER = 50


def write_entries(count: int) -> None:
    admin = make_staff(Role.ADMIN)
    for number in range(1, count + 1):
        audit.record("test.entry", actor=admin, target=admin, number=number)
    db.session.commit()


def chain() -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def actions(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                       .order_by(AuditEntry.seq)))
        db.session.expunge_all()
        return rows


def tamper(sql: str) -> None:
    db.session.execute(text(sql))
    db.session.commit()


# --- the chain -----------------------------------------------------------------

def test_record_builds_a_linked_chain(app):
    """It numbers entries 1..n and links each one to the hash of the one before."""
    with app.app_context():
        write_entries(5)
        entries = chain()
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        assert entries[0].prev_hash == GENESIS
        for before, after in zip(entries, entries[1:], strict=False):
            assert after.prev_hash == before.hash
        assert all(audit.entry_hash(e) == e.hash for e in entries)
        assert [e.detail for e in entries] == [{"number": n} for n in range(1, 6)]
        head = db.session.get(AuditHead, 1)
        assert (head.seq, head.last_hash) == (5, entries[-1].hash)


def test_record_rolls_back_with_the_action(app):
    """It writes nothing, not even a sequence number, when the caller rolls back."""
    with app.app_context():
        write_entries(2)
        audit.record("test.abandoned")
        db.session.rollback()
        audit.record("test.kept")
        db.session.commit()
        assert [(e.seq, e.action) for e in chain()][-1] == (3, "test.kept")
        assert audit.verify_chain().ok


def test_verify_says_intact_with_the_count(app, runner):
    """It reports an untouched chain as intact and says how many entries it checked."""
    with app.app_context():
        write_entries(5)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "Audit chain intact: 5 entries checked." in result.output


def test_verify_an_empty_log_is_intact(app, runner):
    """It accepts a log with no entries yet."""
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0
    assert "intact: 0 entries" in result.output


@pytest.mark.parametrize("sql", [
    """UPDATE audit_entry SET detail = '{"number": 99}' WHERE seq = 3""",
    "UPDATE audit_entry SET action = 'test.innocent' WHERE seq = 3",
    "UPDATE audit_entry SET actor_id = NULL WHERE seq = 3",
], ids=["detail", "action", "actor"])
def test_verify_names_a_changed_entry(app, runner, sql):
    """It exits 1 and names the entry whose content was changed with raw SQL."""
    with app.app_context():
        write_entries(5)
        tamper(sql)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at entry 3" in result.output
    assert "content was changed" in result.output
    assert "2 entries before it are intact" in result.output


def test_verify_names_the_entry_after_a_deleted_one(app, runner):
    """It names the entry that follows a deleted middle entry."""
    with app.app_context():
        write_entries(5)
        tamper("DELETE FROM audit_entry WHERE seq = 3")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at entry 4" in result.output
    assert "deleted or inserted" in result.output


def test_verify_reports_a_cut_when_the_newest_entry_is_deleted(app, runner):
    """It notices the newest entry missing (the head still counts it)."""
    with app.app_context():
        write_entries(5)
        tamper("DELETE FROM audit_entry WHERE seq = 5")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at entry 5" in result.output
    assert "chain was cut" in result.output


def test_verify_notices_a_rehashed_forgery(app):
    """It catches an entry recomputed with a valid hash of its own: the next one no longer links."""
    with app.app_context():
        write_entries(5)
        forged = db.session.scalar(select(AuditEntry).where(AuditEntry.seq == 2))
        forged.detail = {"number": 42}
        forged.hash = audit.entry_hash(forged)
        db.session.commit()
        report = audit.verify_chain()
    assert (report.broken_seq, report.checked) == (3, 2)
    assert "does not link" in report.reason


def test_verify_works_across_batches(app):
    """It checks a chain longer than one batch, and finds a break in a later batch."""
    with app.app_context():
        write_entries(12)
        assert audit.verify_chain(batch=5).checked == 12
        tamper("UPDATE audit_entry SET action = 'x' WHERE seq = 11")
        report = audit.verify_chain(batch=5)
    assert (report.ok, report.broken_seq, report.checked) == (False, 11, 10)


# --- anchors kept outside the database -------------------------------------------

def test_an_anchor_catches_a_log_emptied_with_its_head(app, runner):
    """Deleting every entry and resetting the head leaves a chain that verifies as empty;
    the anchor the scheduler logged says entries were removed."""
    with app.app_context():
        write_entries(4)
        kept = audit.anchor()
        tamper("DELETE FROM audit_entry")
        tamper(f"UPDATE audit_head SET seq = 0, last_hash = '{GENESIS}'")
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0  # no anchor: fooled
    result = runner.invoke(args=["audit", "verify", "--anchor", kept])
    assert result.exit_code == 1
    assert ("does NOT match an anchor: entry 4 was in the log when it was anchored and is "
            "gone (the log now ends at entry 0): entries were removed") in result.output


def test_an_anchor_catches_a_chain_rewritten_and_hashed_again(app, runner):
    """The hashes have no secret: a rewrite with every hash recomputed verifies as intact
    on its own, but not against an anchor from before it."""
    with app.app_context():
        write_entries(5)
        kept = audit.anchor()
        previous = GENESIS
        for entry in chain():
            if entry.seq == 2:
                entry.detail = {"number": 42}
            entry.prev_hash = previous
            entry.hash = previous = audit.entry_hash(entry)
        db.session.get(AuditHead, 1).last_hash = previous
        db.session.commit()
        assert audit.verify_chain().ok
    result = runner.invoke(args=["audit", "verify", "--anchor", kept])
    assert result.exit_code == 1
    assert "entry 5 no longer has its anchored hash: the log up to it was rewritten" in \
        result.output


def test_anchors_of_an_untouched_log_match_as_it_grows(app, runner):
    with app.app_context():
        empty = audit.anchor()
        write_entries(3)
        first = audit.anchor()
        audit.record("test.entry", actor=None, number=4)
        audit.record("test.entry", actor=None, number=5)
        db.session.commit()
        assert first.split(":")[0] == "3" and audit.anchor().split(":")[0] == "5"
    result = runner.invoke(args=["audit", "verify", "--anchor", empty, "--anchor", first,
                                 "--anchor", f" {first.upper()} "])  # as pasted from a log
    assert result.exit_code == 0, result.output
    assert "Audit chain intact: 5 entries checked; 3 anchor(s) match." in result.output
    printed = runner.invoke(args=["audit", "anchor"])
    assert printed.output.strip() == audit_anchor_of(app)


def audit_anchor_of(app) -> str:
    with app.app_context():
        return audit.anchor()


@pytest.mark.parametrize("text", ["12", "x:" + "a" * 64, "3:" + "a" * 63, "3:" + "G" * 64,
                                  "\u00b2:" + "a" * 64, "-3:" + "a" * 64])
def test_a_mistyped_anchor_is_refused_with_the_expected_form(app, runner, text):
    result = runner.invoke(args=["audit", "verify", "--anchor", text])
    assert result.exit_code == 2
    assert "expected the entry number, a colon and its 64-character hash" in result.output


def test_the_scheduler_logs_an_anchor_every_hour(app, caplog):
    from core import scheduler

    job = next(job for job in scheduler.JOBS if job.id == "core.audit_anchor")
    assert (job.trigger, job.trigger_args) == ("cron", {"minute": 37})
    with app.app_context():
        write_entries(2)
        expected = audit.anchor()
    with caplog.at_level("INFO", logger="kinship.scheduler"):
        result = scheduler.run_job(app, job)
    assert result == {"audit_anchor": expected}
    assert expected in caplog.text


# --- what is audited -----------------------------------------------------------

def test_sign_in_success_and_failure_are_audited(app, client, auth):
    """It records a failed and a successful sign-in against the account."""
    with app.app_context():
        admin_id = make_staff(Role.ADMIN).id
    response = auth.login("admin@example.org", "not the password")
    assert b"do not match" in response.data
    auth.login("admin@example.org")
    failed, succeeded = actions(app, "login.failed"), actions(app, "login.succeeded")
    assert [e.actor_id for e in failed] == [admin_id]
    assert [(e.actor_id, e.detail) for e in succeeded] == [(admin_id, {"mfa": True})]


def test_role_change_is_audited(app, client, auth):
    """It records who changed whose role, from what to what."""
    with app.app_context():
        admin_id = make_staff(Role.ADMIN).id
        target_id = make_staff(Role.PEER_MODERATOR, "peer@example.org").id
    auth.login("admin@example.org")
    response = client.post(f"/admin/users/{target_id}", data={"role": "clinician"})
    assert response.status_code == 302
    [entry] = actions(app, "user.role_changed")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (admin_id, "user", target_id)
    assert entry.detail == {"old": "peer_moderator", "new": "clinician"}


def test_enrolment_invite_and_acceptance_are_audited(app, client, auth):
    """It records the enrolment, the invite, its acceptance and the consent given."""
    with app.app_context():
        make_study()
        version = make_consent()
        version_id, version_label = version.id, version.version
        researcher_id = make_staff(Role.RESEARCHER).id
    auth.login("researcher@example.org")
    page = client.post("/research/participants/new", data={"study_code": "T-0100",
                                                            "moderator_id": 0})
    link = re.search(rb'id="invite-link"[^>]*value="([^"]+)"', page.data).group(1).decode()
    auth.logout()

    [enrolled] = actions(app, "participant.enrolled")
    [issued] = actions(app, "invite.issued")
    assert enrolled.actor_id == researcher_id == issued.actor_id
    assert enrolled.target_type == issued.target_type == "participant"
    participant_id = enrolled.target_id

    response = client.post(link.removeprefix("http://kinship.test"), data={
        "display_name": "Quiet Harbour", "password": "slow green tide pools",
        "confirm": "slow green tide pools", "timezone": "Europe/London",
        "consent_version_id": str(version_id), "consent": "y"})
    assert response.status_code == 302
    [accepted] = actions(app, "invite.accepted")
    [consent] = actions(app, "consent.given")
    assert (accepted.target_type, accepted.target_id) == ("participant", participant_id)
    assert accepted.detail == {"invite_id": issued.detail["invite_id"]}
    assert consent.actor_id == accepted.actor_id
    assert consent.detail == {"version": version_label}
    assert enrolled.seq < issued.seq < accepted.seq


def test_staff_viewing_a_participant_is_audited(app, client, auth):
    """It records each time a moderator opens a participant's page."""
    with app.app_context():
        peer = make_staff(Role.PEER_MODERATOR, "peer@example.org")
        peer_id = peer.id
        participant_id = make_participant(moderator=peer).id
    auth.login("peer@example.org")
    assert client.get(f"/moderation/participants/{participant_id}").status_code == 200
    assert client.get(f"/moderation/participants/{participant_id}").status_code == 200
    viewed = actions(app, "participant.viewed")
    assert [(e.actor_id, e.target_type, e.target_id) for e in viewed] == [
        (peer_id, "participant", participant_id)] * 2


def test_refused_view_of_a_participant_is_not_recorded_as_a_view(app, client, auth):
    """It refuses a peer moderator another moderator's participant and logs no view."""
    with app.app_context():
        other = make_staff(Role.PEER_MODERATOR, "other@example.org")
        make_staff(Role.PEER_MODERATOR, "peer@example.org")
        participant_id = make_participant(moderator=other).id
    auth.login("peer@example.org")
    assert client.get(f"/moderation/participants/{participant_id}").status_code == 403
    assert actions(app, "participant.viewed") == []


# --- concurrent appenders ------------------------------------------------------

def assert_chain_of(app, total: int) -> None:
    with app.app_context():
        report = audit.verify_chain()
        seqs = list(db.session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        workers = {e.detail["worker"] for e in chain()}
    assert report.ok, report
    assert report.checked == total
    assert seqs == list(range(1, total + 1))
    assert len(workers) == 2


def test_two_threads_appending_at_once_keep_one_chain(app):
    """It serialises two appenders with their own sessions: one chain, 1..100, no gaps."""
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def append(worker: str) -> None:
        try:
            with app.app_context():
                barrier.wait()
                for number in range(PER_WORKER):
                    audit.record("test.concurrent", worker=worker, number=number)
                    db.session.commit()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "an appender hung"
    assert errors == []
    assert_chain_of(app, 2 * PER_WORKER)


APPENDER = """
import sys
from core import audit, create_app
from core.extensions import db

app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sys.argv[1],
                  "SECRET_KEY": "test-secret-key-that-is-long-enough-1234"})
with app.app_context():
    print("ready", flush=True)
    sys.stdin.readline()
    for number in range(int(sys.argv[3])):
        audit.record("test.concurrent", worker=sys.argv[2], number=number)
        db.session.commit()
print("done", flush=True)
"""


def test_two_processes_appending_at_once_keep_one_chain(app, tmp_path):
    """It serialises two appender processes (the row lock on PostgreSQL, the write lock on
    SQLite): one chain, 1..100, no gaps."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    env = {**os.environ, "KINSHIP_INSTANCE_PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, url, name, str(PER_WORKER)],
                              cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name in ("a", "b")]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        for proc in procs:  # both are waiting: let them go together
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert out.strip() == "done"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert_chain_of(app, 2 * PER_WORKER)

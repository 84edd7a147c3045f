"""The soak's loss audit can fail: each check, fed a real loss, names it."""

from __future__ import annotations

import os
from pathlib import Path

from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline_tests.reliability import loss_audit
from smartsync_pipeline_tests.reliability.activity_driver import SimulatedChange
from smartsync_pipeline_tests.reliability.chaos_sandbox import ChaosSandbox


def _read(**fields: object) -> dict:
    record = {"kind": "read", "call": "bills_due_30d", "max_age": 5.0, "requested_at": 1000.0, "latency": 0.01}
    record.update(outcome="answer", source="mirror", as_of=999.0, stale=False, reason="", max_age_seconds=5.0)
    record.update(fields)
    return record


DONE = {"kind": "done", "reader_stats": {"refresh": 1}, "syncs": 1, "retries": 0, "lock_wait_seconds": 0.0,
        "lock_waits": 0, "api_calls": 2}  # fmt: skip


def test_reader_check_flags_unflagged_stale_answers_exceptions_and_invalid_grant() -> None:
    clean, facts = loss_audit.reader_problems([_read(), _read(stale=True, as_of=1.0), DONE], readers=1)
    assert clean == [] and facts.stale_flagged == 1 and facts.answered == 2
    allowed, facts = loss_audit.reader_problems([_read(), _read(outcome="unavailable", error="x"), DONE], 1)
    assert allowed == [] and facts.unavailable == 1
    for bad, words in (
        (_read(as_of=994.0), "unflagged stale"),  # 6 s old, asked for 5 s, not flagged
        (_read(max_age=0.0, max_age_seconds=0.0, as_of=999.9), "unflagged stale"),  # live read from before asking
        (_read(outcome="exception", error="IOException: boom"), "reader exception"),
        (_read(outcome="invalid_grant", error="must be reconnected"), "invalid_grant"),
    ):
        problems, _ = loss_audit.reader_problems([_read(), bad, DONE], readers=1)
        assert len(problems) == 1 and words in problems[0], problems
    problems, _ = loss_audit.reader_problems([_read()], readers=1)
    assert problems == ["only 0 of 1 readers finished cleanly"]


def test_mirror_and_change_log_checks_find_unsynced_and_duplicated_changes(connected_company) -> None:
    company = connected_company
    company.engine().sync()
    with MirrorDatabase(company.home).inspect() as con:
        baseline = change_log.head(con).change_id
    changes = [SimulatedChange(c["entity"], str(c["id"]), c["op"], c["sync_token"]) for c in company.simulate(20, 9)]
    truth = loss_audit.SandboxTruth(company.home, company.realm_id, ChaosSandbox(company.sandbox))

    # Not synced yet: the mirror differs, the last logged versions are old, nothing touched was logged.
    assert loss_audit.mirror_problems(truth)
    problems, _ = loss_audit.change_log_problems(truth, changes, baseline)
    assert any("last logged version differs" in p for p in problems)
    assert any("not logged during the soak" in p for p in problems)

    company.engine().sync()
    truth = loss_audit.SandboxTruth(company.home, company.realm_id, ChaosSandbox(company.sandbox))
    assert loss_audit.mirror_problems(truth) == []
    problems, facts = loss_audit.change_log_problems(truth, changes, baseline)
    assert problems == [] and facts.rows_during_soak > 0

    # A version logged twice (written behind the engine's back) is named, and the chain breaks.
    db = MirrorDatabase(company.home)
    with db.locked(), db.connect() as con:
        con.execute(
            "INSERT INTO change_log SELECT * REPLACE (change_id + 1000000 AS change_id) FROM change_log "
            "WHERE change_id = (SELECT max(change_id) FROM change_log WHERE op = 'update')"
        )
    problems, _ = loss_audit.change_log_problems(truth, changes, baseline)
    assert any("a version logged twice" in p for p in problems), problems
    assert loss_audit.audit_verify_problems({**os.environ, "SMARTSYNC_HOME": str(company.home.root)})


def test_webhook_check_names_objects_never_announced(tmp_path: Path) -> None:
    path = tmp_path / "inbox.sqlite"
    WebhookInbox(path).close()
    touched = [SimulatedChange("Bill", "7", "update", "3")]
    problems, stored = loss_audit.webhook_problems(path, touched, "123")
    assert stored == 0 and problems and "Bill 7" in problems[0]

"""After a soak: prove nothing was lost, from the mirror, the change log, the readers and the inbox.

Every check returns plain strings naming what is wrong; an empty list means that part lost nothing.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smartsync_pipeline.entities import entity_names, iter_entities
from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline_tests.mirror_equality import mirror_differences
from smartsync_pipeline_tests.reliability.activity_driver import SimulatedChange
from smartsync_pipeline_tests.reliability.chaos_sandbox import ChaosSandbox

MAX_LISTED = 10  # problems listed per check before "... and N more"


@dataclass
class SandboxTruth:
    """The sandbox's final state of one realm, fetched once per entity and shared by every check."""

    home: Home
    realm_id: str
    sandbox: ChaosSandbox

    def __post_init__(self) -> None:
        self._objects: dict[str, dict[str, Any]] = {}

    def sandbox_objects(self, entity: str) -> dict[str, Any]:
        if entity not in self._objects:
            self._objects[entity] = self.sandbox.control(f"objects/{self.realm_id}/{entity}", method="GET")
        return self._objects[entity]

    def tokens(self, entity: str) -> dict[str, str]:
        return {str(o["Id"]): str(o["SyncToken"]) for o in self.sandbox_objects(entity)["active"]}

    def deleted(self, entity: str) -> set[str]:
        return {str(i) for i in self.sandbox_objects(entity)["deleted"]}


def _listed(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    more = f" ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return [f"{title}: {'; '.join(items[:MAX_LISTED])}{more}"]


def mirror_problems(truth: SandboxTruth) -> list[str]:
    """Row by row, the mirror equals the sandbox for every entity."""
    return [p for name, found in mirror_differences(truth).items() for p in _listed(f"mirror {name}", found)]


def audit_verify_problems(env: dict[str, str]) -> list[str]:
    """``smartsync audit verify`` recomputes the hash chain in its own process."""
    done = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "audit", "verify"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0 or "change log intact" not in done.stdout:
        return [f"smartsync audit verify failed (rc {done.returncode}): {(done.stdout + done.stderr).strip()[:300]}"]
    return []


@dataclass
class ChangeLogFacts:
    rows: int
    rows_during_soak: int
    objects_logged: int


def change_log_problems(
    truth: SandboxTruth, touched: Iterable[SimulatedChange], baseline_change_id: int
) -> tuple[list[str], ChangeLogFacts]:
    """Every change the simulator made is in the change log exactly once: no version is logged twice,
    the last logged version of every object is the sandbox's final one (token, or a delete), and every
    object the simulator touched has an entry from the soak (after ``baseline_change_id``)."""
    with MirrorDatabase(truth.home).inspect() as con:
        rows = con.execute(
            "SELECT change_id, entity, entity_id, op, sync_token_after FROM change_log WHERE realm_id = ? "
            "ORDER BY change_id",
            [truth.realm_id],
        ).fetchall()
    problems: list[str] = []
    versions: Counter[tuple[str, str, str]] = Counter()
    deletes: Counter[tuple[str, str]] = Counter()
    last: dict[tuple[str, str], tuple[str, str | None]] = {}
    during: set[tuple[str, str]] = set()
    for change_id, entity, entity_id, op, token in rows:
        if op == "delete":
            deletes[(entity, entity_id)] += 1
        else:
            versions[(entity, entity_id, token)] += 1
        last[(entity, entity_id)] = (op, token)
        if change_id > baseline_change_id:
            during.add((entity, entity_id))
    problems += _listed(
        "a version logged twice", [f"{e} {i} token {t} x{n}" for (e, i, t), n in versions.items() if n > 1]
    )
    problems += _listed("a delete logged twice", [f"{e} {i} x{n}" for (e, i), n in deletes.items() if n > 1])

    wrong_last: list[str] = []
    for spec in iter_entities():
        tokens, deleted = truth.tokens(spec.name), truth.deleted(spec.name)
        for object_id, token in tokens.items():
            logged = last.get((spec.name, object_id))
            if logged is None:
                wrong_last.append(f"{spec.name} {object_id} (token {token}) was never logged")
            elif logged != ("create", token) and logged != ("update", token):
                wrong_last.append(f"{spec.name} {object_id}: last logged {logged}, QBO has token {token}")
        for object_id in deleted:
            logged = last.get((spec.name, object_id))
            if logged is not None and logged[0] != "delete":
                wrong_last.append(f"{spec.name} {object_id}: deleted in QBO, last logged {logged}")
    problems += _listed("last logged version differs from QBO", wrong_last)

    names = set(entity_names())
    missing: list[str] = []
    seen: set[tuple[str, str]] = set()
    for change in touched:
        key = (change.entity, change.id)
        if change.entity not in names or key in seen:
            continue
        seen.add(key)
        if key not in during:
            missing.append(f"{change.entity} {change.id} ({change.op} -> token {change.sync_token})")
    problems += _listed("touched by the simulator but not logged during the soak", missing)
    return problems, ChangeLogFacts(len(rows), sum(1 for r in rows if r[0] > baseline_change_id), len(last))


@dataclass
class ReadFacts:
    """The readers' records, summed up."""

    reads: int = 0
    answered: int = 0
    by_source: Counter | None = None
    stale_flagged: int = 0
    unavailable: int = 0
    exceptions: int = 0
    invalid_grant: int = 0
    latencies: list[float] | None = None
    refreshes: int = 0
    refreshes_reused: int = 0
    syncs: int = 0
    retries: int = 0
    lock_waits: int = 0
    lock_wait_seconds: float = 0.0
    readers_done: int = 0

    def percentile(self, q: float) -> float:
        values = sorted(self.latencies or [])
        if not values:
            return 0.0
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def reader_problems(records: list[dict[str, Any]], readers: int) -> tuple[list[str], ReadFacts]:
    """No unflagged stale answer (not stale ⇒ as_of >= asked - max_age), no unhandled exception, no
    invalid_grant; DataUnavailableError is allowed (it is the explicit refusal) but counted."""
    facts = ReadFacts(by_source=Counter(), latencies=[])
    unflagged, crashed, grants = [], [], []
    for r in records:
        if r["kind"] == "done":
            facts.readers_done += 1
            stats = r["reader_stats"]
            facts.refreshes += stats.get("refresh", 0)
            facts.refreshes_reused += stats.get("refresh_reused", 0)
            facts.syncs += r["syncs"]
            facts.retries += r["retries"]
            facts.lock_waits += r["lock_waits"]
            facts.lock_wait_seconds += r["lock_wait_seconds"]
            continue
        if r["kind"] != "read":
            continue
        facts.reads += 1
        facts.latencies.append(r["latency"])
        outcome = r["outcome"]
        if outcome == "answer":
            facts.answered += 1
            facts.by_source[r["source"]] += 1
            if r["stale"]:
                facts.stale_flagged += 1
            elif r["as_of"] is None or r["as_of"] < r["requested_at"] - r["max_age_seconds"]:
                unflagged.append(
                    f"{r['call']} max_age={r['max_age']}: as_of {r['as_of']} asked {r['requested_at']:.3f} "
                    f"limit {r['max_age_seconds']} s, not flagged stale"
                )
        elif outcome == "unavailable":
            facts.unavailable += 1
        elif outcome == "invalid_grant":
            facts.invalid_grant += 1
            grants.append(r["error"])
        else:
            facts.exceptions += 1
            crashed.append(f"{r['call']}: {r['error']}")
    problems = _listed("unflagged stale answer", unflagged)
    problems += _listed("reader exception", crashed)
    problems += _listed("invalid_grant in a reader", grants)
    if facts.readers_done != readers:
        problems.append(f"only {facts.readers_done} of {readers} readers finished cleanly")
    if facts.answered == 0:
        problems.append("no read was answered at all")
    return problems, facts


def analyst_problems(records: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    done = next((r for r in records if r["kind"] == "done"), None)
    errors = [r["what"] for r in records if r["kind"] == "error"]
    problems = _listed("analyst error", errors)
    if done is None:
        problems.append("the analyst process did not finish cleanly")
        return problems, {}
    if done["loops"] == 0:
        problems.append("the analyst never queried")
    return problems, done


def webhook_problems(inbox_path: Any, touched: Iterable[SimulatedChange], realm_id: str) -> tuple[list[str], int]:
    """Every object the simulator touched was announced by at least one stored webhook event."""
    records = []
    with WebhookInbox(inbox_path) as inbox:
        while page := inbox.read_after(records[-1].seq if records else 0, limit=10_000):
            records += page
    stored = defaultdict(int)
    for r in records:
        if r.realm_id == realm_id:
            stored[(r.entity, r.entity_id)] += 1
    names = set(entity_names())
    missing = sorted({f"{c.entity} {c.id}" for c in touched if c.entity in names and (c.entity, c.id) not in stored})
    return _listed("touched but never announced by a stored webhook", missing), len(records)

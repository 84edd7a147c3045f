"""The fleet state index (real SQLite in WAL mode): what is stale, per company, and that the question
sensors ask is answered from the ``fresh_until`` index (cost follows the stale pairs, not the fleet)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from smartsync_pipeline.entities import ENTITIES, entity
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import fleet_state
from smartsync_pipeline.mirror.fleet_state import FleetState

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def synced_at(moment: datetime) -> dict:
    return {spec.name: {"last_sync_at": moment.isoformat()} for spec in ENTITIES}


def test_stale_names_exactly_the_due_pairs_in_registry_order(tmp_path):
    index = FleetState(Home(tmp_path))
    index.record("fresh", synced_at(NOW - timedelta(minutes=1)))
    index.record("old", synced_at(NOW - timedelta(hours=13)))  # past every warn window
    half = {name: {"last_sync_at": (NOW - timedelta(minutes=20)).isoformat()} for name in ("Bill", "Item")}
    index.record("half", half)  # two entities synced 20 min ago, the rest never
    index.register("new")
    stale = index.stale(NOW)
    registry = [spec.name for spec in ENTITIES]
    assert sorted(stale) == ["half", "new", "old"]
    assert stale["old"] == registry and stale["new"] == registry
    # Bill (warn 15 min) is due, Item (warn 12 h) is not; never-synced entities are due at once.
    assert "Bill" in stale["half"] and "Item" not in stale["half"]
    assert stale["half"] == [n for n in registry if n != "Item"]
    # The same clock a little later: the fresh company's transactional entities fall due.
    later = index.stale(NOW + timedelta(minutes=15))
    assert later["fresh"] == [s.name for s in ENTITIES if s.freshness.warn <= timedelta(minutes=16)]


def test_of_a_company_remove_and_register_do_not_forget_a_sync(tmp_path):
    home = Home(tmp_path)
    index = FleetState(home)
    index.record("r1", synced_at(NOW))
    rows = index.of("r1")
    assert list(rows) == [spec.name for spec in ENTITIES]
    bill = rows["Bill"]
    assert bill.last_sync_at == NOW and bill.fresh_until == NOW + entity("Bill").freshness.warn
    index.register("r1")  # a reconnect does not pretend a synced company never synced
    assert index.of("r1")["Bill"].last_sync_at == NOW
    index.remove("r1")
    assert index.of("r1") == {} and index.realms() == []
    assert oct(home.fleet_state_path.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(home.fleet_state_path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_stale_question_is_an_index_range_scan(tmp_path):
    home = Home(tmp_path)
    FleetState(home).record("r1", synced_at(NOW))
    with sqlite3.connect(home.fleet_state_path) as con:
        plan = " ".join(
            row[-1]
            for row in con.execute(
                "EXPLAIN QUERY PLAN SELECT realm_id, entity FROM entity_state WHERE fresh_until <= ?", [0.0]
            )
        )
    assert "USING INDEX entity_state_due" in plan or "USING COVERING INDEX entity_state_due" in plan, plan


def test_a_changed_warn_window_is_applied_to_rows_written_before(tmp_path, monkeypatch):
    home = Home(tmp_path)
    FleetState(home).record("r1", synced_at(NOW))
    assert "Item" not in FleetState(home).stale(NOW + timedelta(hours=1)).get("r1", [])
    monkeypatch.setitem(fleet_state._WARN, "Item", 1800.0)  # the registry now warns after 30 min
    assert "Item" in FleetState(home).stale(NOW + timedelta(hours=1))["r1"]


def test_the_kept_writer_connection_follows_a_removed_or_replaced_index(tmp_path):
    """Publications upsert through one kept connection per home and process; an index removed (or
    rebuilt as a new file) meanwhile must get the next upsert, not the unlinked old file."""
    home = Home(tmp_path)
    index = FleetState(home)
    index.record("a", synced_at(NOW - timedelta(minutes=1)))
    assert index.realms() == ["a"]
    for suffix in ("", "-wal", "-shm"):
        home.fleet_state_path.with_name(home.fleet_state_path.name + suffix).unlink(missing_ok=True)
    index.record("b", synced_at(NOW - timedelta(minutes=1)))
    assert FleetState(home).realms() == ["b"]
    assert FleetState(home).of("b")["Bill"].last_sync_at == NOW - timedelta(minutes=1)

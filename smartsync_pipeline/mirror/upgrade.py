"""Upgrading a home written before companies were shards: all companies in one ``mirror.duckdb``,
one hash chain, one ``snapshots/CURRENT``, one ``archive/``.

It happens on first use (any engine, snapshot store, reader or analyst session calls
``ensure_upgraded``), once, under a home-wide lock and the old layout's writer lock:

1. the single file is checkpointed and its hash chain verified from genesis; a broken chain stops the
   upgrade with the first broken link named (re-chaining it would launder the tampering);
2. per company, a new mirror is built beside its shard: every entity row and sync_state row of that
   company, and its change-log rows in their original order, re-chained per company (ids 1..n; each
   row's content hash is recomputed because the id is part of it) and verified; likewise its stored
   report runs (``report_run``, re-chained with run_seq 1..n, checked first like the change log) and
   their cells;
3. the new mirrors are moved into ``realms/<realm>/mirror.duckdb`` and published;
4. the single file moves to ``legacy/mirror-single-file.duckdb`` (0444) next to ``legacy/UPGRADE.json``,
   which maps each company's new chain to the old one (old first/last change id, old head). That move
   is the commit point: a crash before it leaves the single file where it was, and the next use
   redoes the whole upgrade from it. Old snapshots, the old archive and the old chain's anchor files
   (global change ids) move to ``legacy/`` too.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from smartsync_pipeline.durable_files import fsync_dir, install, write_atomically
from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.home import REALM_ID, Home
from smartsync_pipeline.locking import FileLock
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import WRITER_MEMORY_LIMIT
from smartsync_pipeline.mirror.reports import RUN_CONTENT_FIELDS, ensure_schema, run_content_hash, verify_runs
from smartsync_pipeline.mirror.schema import extract_sql, migrate, record_data_version
from smartsync_pipeline.mirror.sql import fetch_one, sql_literal

LEGACY_MIRROR = "mirror.duckdb"
LEGACY_DIR = "legacy"
LEGACY_COPY = "mirror-single-file.duckdb"

_active = threading.local()


class UpgradeError(RuntimeError):
    """The single-file mirror cannot be split safely; nothing was changed."""


@dataclass
class CompanyUpgrade:
    realm_id: str
    rows: dict[str, int] = field(default_factory=dict)
    changes: int = 0
    report_runs: int = 0
    legacy_first_change_id: int | None = None
    legacy_last_change_id: int | None = None
    chain_head: dict[str, Any] = field(default_factory=dict)


@dataclass
class UpgradeReport:
    legacy_path: Path
    legacy_chain_head: dict[str, Any]
    companies: dict[str, CompanyUpgrade]


def legacy_mirror_path(home: Home) -> Path:
    return home.root / LEGACY_MIRROR


def ensure_upgraded(home: Home) -> UpgradeReport | None:
    """Split a single-file mirror into per-company shards if ``home`` still has one (cheap otherwise:
    one ``stat``). Safe to call from many processes at once: one upgrades, the others wait for it."""
    legacy = legacy_mirror_path(home)
    if getattr(_active, "on", False) or not legacy.exists():
        return None
    home.ensure()
    with FileLock(home.locks_dir / "upgrade.lock", what="the upgrade to per-company storage").exclusive(3600):
        if not legacy.exists():
            return None  # another process did it while we waited
        _active.on = True
        try:
            # The old layout's writer lock: an old smartsync still running cannot write meanwhile.
            with FileLock(home.locks_dir / "mirror.write.lock", what="the old mirror writer lock").exclusive(900):
                return _upgrade(home, legacy)
        finally:
            _active.on = False


def _upgrade(home: Home, legacy: Path) -> UpgradeReport:
    from smartsync_pipeline.mirror.analyst import write_script
    from smartsync_pipeline.mirror.database import MirrorDatabase
    from smartsync_pipeline.mirror.snapshots import SnapshotStore

    _checkpoint(legacy)
    con = duckdb.connect(str(legacy), read_only=True)
    try:
        verified = change_log.verify(con)
        if not verified.ok:
            raise UpgradeError(
                f"the single-file mirror {legacy} cannot be split into per-company mirrors: its change log is "
                f"broken at change {verified.first_broken} ({verified.reason}). Nothing was changed; restore "
                "the file from a backup"
            )
        runs = verify_runs(con)  # the report run log is chained too: re-chaining it must not launder an edit
        if not runs.ok:
            raise UpgradeError(
                f"the single-file mirror {legacy} cannot be split into per-company mirrors: its report run log "
                f"is broken at run {runs.first_broken} ({runs.reason}). Nothing was changed; restore the file "
                "from a backup"
            )
        realms = _realms(con)
    finally:
        con.close()
    report = UpgradeReport(legacy, {"change_id": verified.head.change_id, "row_hash": verified.head.row_hash}, {})
    built: dict[str, tuple[Path, dict, str, list[str]]] = {}
    for realm in realms:
        report.companies[realm], built[realm] = _build_company(home, legacy, realm)
    for realm, (tmp, state, key, tables) in built.items():
        db = MirrorDatabase(home, realm)
        with db.locked():
            db.discard_shadow()
            install(tmp, db.path, mode=0o600)
            SnapshotStore(home, realm).publish(db.path, state, content_key=key, tables=tables)
    _retire_legacy(home, legacy, report)
    write_script(home)
    return report


def _checkpoint(legacy: Path) -> None:
    """Apply a WAL the old writer left (a crash after commit) so the file holds everything."""
    wal = legacy.with_name(legacy.name + ".wal")
    if wal.exists() and wal.stat().st_size > 0:
        con = duckdb.connect(str(legacy))
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()


def _realms(con: duckdb.DuckDBPyConnection) -> list[str]:
    existing = {
        r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    }
    sources = [t for t in (*(s.table for s in ENTITIES), "sync_state", "change_log") if t in existing]
    if not sources:
        return []
    union = " UNION ".join(f"SELECT DISTINCT realm_id FROM {t}" for t in sources)
    realms = sorted(r[0] for r in con.execute(union).fetchall())
    bad = [r for r in realms if not isinstance(r, str) or not REALM_ID.match(r)]
    if bad:
        raise UpgradeError(f"the single-file mirror holds realm ids that are not valid folder names: {bad[:5]}")
    return realms


def _columns(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
        "ORDER BY table_name, column_index",
        [catalog],
    ).fetchall():
        out.setdefault(table, []).append(column)
    return out


def _build_company(home: Home, legacy: Path, realm: str) -> tuple[CompanyUpgrade, tuple[Path, dict, str, list[str]]]:
    from smartsync_pipeline.mirror.snapshots import content_key, mirror_tables, read_state_rows

    shard = home.realm(realm).ensure()
    tmp = shard.root / ".mirror.upgrade.duckdb"
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    result = CompanyUpgrade(realm)
    con = duckdb.connect(str(tmp), config={"threads": "1", "memory_limit": WRITER_MEMORY_LIMIT})
    try:
        migrate(con)
        con.execute(f"ATTACH {sql_literal(str(legacy))} AS legacy (READ_ONLY)")
        old, new = _columns(con, "legacy"), _columns(con, current_catalog(con))
        con.execute("BEGIN TRANSACTION")
        for spec in ENTITIES:
            if spec.table not in old:
                continue
            shared = [c for c in new[spec.table] if c in old[spec.table]]
            names = ", ".join(shared)
            con.execute(
                f"INSERT INTO {spec.table} ({names}) SELECT {names} FROM legacy.{spec.table} WHERE realm_id = ?",
                [realm],
            )
            for col in spec.columns:  # typed columns the old file lacked: from the raw JSON, as migrations do
                if col.name not in old[spec.table]:
                    con.execute(f"UPDATE {spec.table} SET {col.name} = {extract_sql(col)}")
            result.rows[spec.table] = fetch_one(con, f"SELECT count(*) FROM {spec.table}")[0]
        if "sync_state" in old:
            con.execute("INSERT INTO sync_state BY NAME SELECT * FROM legacy.sync_state WHERE realm_id = ?", [realm])
        if "change_log" in old:
            first, last = fetch_one(
                con, "SELECT min(change_id), max(change_id) FROM legacy.change_log WHERE realm_id = ?", [realm]
            )
            result.legacy_first_change_id, result.legacy_last_change_id = first, last
            fields = ", ".join(change_log.CONTENT_FIELDS[1:])
            appender = change_log.ChangeLogAppender(con)
            result.changes = appender.append(
                f"SELECT row_number() OVER (ORDER BY change_id) AS ord, {fields} "
                "FROM legacy.change_log WHERE realm_id = ?",
                [realm],
                fetch_one(con, "SELECT count(*) FROM legacy.change_log WHERE realm_id = ?", [realm])[0],
            )
        if "report_run" in old:
            result.report_runs = _copy_reports(con, realm)
        record_data_version(con, "upgrade")
        con.execute("COMMIT")
        con.execute("DETACH legacy")
        verified = change_log.verify(con)
        if not verified.ok:
            raise UpgradeError(f"company {realm}: the re-chained change log does not verify ({verified.reason})")
        runs = verify_runs(con)
        if not runs.ok:
            raise UpgradeError(f"company {realm}: the re-chained report run log does not verify ({runs.reason})")
        result.chain_head = {"change_id": verified.head.change_id, "row_hash": verified.head.row_hash}
        con.execute("CHECKPOINT")
        publication = (read_state_rows(con), content_key(con), mirror_tables(con))
    finally:
        con.close()
    return result, (tmp, *publication)


def _copy_reports(con: duckdb.DuckDBPyConnection, realm: str) -> int:
    """The company's report runs, in their original order, re-numbered 1..n and re-chained (the run's
    sequence number is part of its hash, as the change id is of a change), and its cells pointed at the
    new numbers. Inside the caller's transaction; returns the number of runs."""
    ensure_schema(con)
    names = ", ".join(RUN_CONTENT_FIELDS)
    old = con.execute(f"SELECT {names} FROM legacy.report_run WHERE realm_id = ? ORDER BY run_seq", [realm]).fetchall()
    prev, renumbered = change_log.GENESIS_HASH, []
    for seq, row in enumerate(old, start=1):
        fields = dict(zip(RUN_CONTENT_FIELDS, row, strict=True))
        renumbered.append((fields["run_seq"], seq))
        fields["run_seq"] = seq
        row_hash = change_log.chain(prev, run_content_hash(fields))
        con.execute(
            f"INSERT INTO report_run ({names}, prev_row_hash, row_hash) "
            f"VALUES ({', '.join('?' for _ in RUN_CONTENT_FIELDS)}, ?, ?)",
            [*(fields[n] for n in RUN_CONTENT_FIELDS), prev, row_hash],
        )
        prev = row_hash
    if renumbered:
        con.execute("CREATE TEMP TABLE run_renumbered (old_seq BIGINT, new_seq BIGINT)")
        con.executemany("INSERT INTO run_renumbered VALUES (?, ?)", renumbered)
        con.execute(
            "INSERT INTO report_cell BY NAME SELECT c.* REPLACE (r.new_seq AS run_seq) "
            "FROM legacy.report_cell c JOIN run_renumbered r ON r.old_seq = c.run_seq WHERE c.realm_id = ?",
            [realm],
        )
        con.execute("DROP TABLE run_renumbered")
    return len(old)


def current_catalog(con: duckdb.DuckDBPyConnection) -> str:
    return fetch_one(con, "SELECT current_database()")[0]


def _retire_legacy(home: Home, legacy: Path, report: UpgradeReport) -> None:
    """Move the old layout under ``legacy/``; the mirror file moves last (the commit point)."""
    target = home.root / LEGACY_DIR
    target.mkdir(exist_ok=True, mode=0o700)
    for name in ("snapshots", "archive", "anchors"):  # anchors: of the old, shared chain
        old = home.root / name
        if old.exists() and not (target / name).exists():
            os.replace(old, target / name)
        elif old.exists():
            shutil.rmtree(old, ignore_errors=True)
    for name in ("analyst.duckdb", "analyst.duckdb.tmp", "mirror.next.duckdb", "mirror.next.duckdb.wal"):
        path = home.root / name
        if path.is_symlink() or path.exists():
            path.unlink()
    doc = {
        "upgraded_at": datetime.now(UTC).isoformat(),
        "legacy_mirror": f"{LEGACY_DIR}/{LEGACY_COPY}",
        "legacy_chain_head": report.legacy_chain_head,
        "companies": {
            realm: {
                "rows": c.rows,
                "changes": c.changes,
                "report_runs": c.report_runs,
                "legacy_first_change_id": c.legacy_first_change_id,
                "legacy_last_change_id": c.legacy_last_change_id,
                "chain_head": c.chain_head,
            }
            for realm, c in report.companies.items()
        },
        "note": "each company's change log is the legacy chain's rows of that company, in order, re-numbered "
        "1..n and re-chained; the legacy file keeps the original chain, which verified before the split",
    }
    write_atomically(target / "UPGRADE.json", json.dumps(doc, indent=1), mode=0o444)
    os.chmod(legacy, 0o444)
    os.replace(legacy, target / LEGACY_COPY)
    fsync_dir(home.root)
    legacy.with_name(legacy.name + ".wal").unlink(missing_ok=True)

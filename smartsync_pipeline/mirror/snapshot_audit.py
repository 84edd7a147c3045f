"""Is what readers see what the mirror holds? ``smartsync audit verify --snapshot`` for one company.

Three checks on the company's published snapshots: every published file is exactly as it was sealed
(nobody chmod-ed or edited it), the current snapshot's hash chain verifies, and -- when the snapshot is
at the mirror's data version -- its rows equal the mirror's, table by table (``sync_state`` excepted:
its authority is ``CURRENT``, republished by syncs that change no rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotStore, content_key, content_key_of
from smartsync_pipeline.mirror.sql import fetch_one, sql_literal

NOT_COMPARED = ("sync_state", "schema_version")


@dataclass
class SnapshotAudit:
    realm_id: str
    generation: int | None = None
    chain: change_log.ChainVerification | None = None
    problems: list[str] = field(default_factory=list)
    compared_tables: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and (self.chain is None or self.chain.ok)


def audit_snapshots(home: Home, realm_id: str, *, timeout: float = 600.0) -> SnapshotAudit:
    store = SnapshotStore(home, realm_id)
    audit = SnapshotAudit(realm_id)
    info = store.current()
    if info is None:
        audit.problems.append("nothing is published yet")
        return audit
    audit.generation = info.generation
    audit.problems += store.problems()
    if not info.path.exists():
        return audit
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        audit.chain = change_log.verify(con)
    finally:
        con.close()
    db = MirrorDatabase(home, realm_id)
    if not db.path.exists():
        return audit
    with db.inspect(timeout) as mirror:
        mirror.execute(f"ATTACH {sql_literal(str(info.path))} AS snap (READ_ONLY)")
        try:
            if content_key_of(mirror, "snap") != content_key(mirror):
                audit.problems.append(
                    f"snapshot generation {info.generation} is behind the mirror ({content_key_of(mirror, 'snap')} vs "
                    f"{content_key(mirror)}): a sync was interrupted before publishing; the next sync publishes it"
                )
                return audit
            tables = [
                r[0]
                for r in mirror.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                    "AND schema_name = 'main' ORDER BY table_name"
                ).fetchall()
                if r[0] not in NOT_COMPARED
            ]
            for table in tables:
                differ = fetch_one(
                    mirror,
                    f"SELECT (SELECT count(*) FROM (SELECT * FROM main.{table} EXCEPT ALL SELECT * FROM snap.{table})) "
                    f"+ (SELECT count(*) FROM (SELECT * FROM snap.{table} EXCEPT ALL SELECT * FROM main.{table}))",
                )[0]
                audit.compared_tables += 1
                if differ:
                    where = f"snapshot generation {info.generation}"
                    audit.problems.append(f"{where}: table {table} differs from the mirror in {differ} row(s)")
        except duckdb.CatalogException as exc:
            audit.problems.append(f"snapshot generation {info.generation} lacks a table of the mirror: {exc}")
        finally:
            mirror.execute("DETACH snap")
    return audit

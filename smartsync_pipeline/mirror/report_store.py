"""Writing report runs into a company's mirror with the sync engine's discipline: the company's writer
lock, one DuckDB transaction (cells + run log + a data version), a checkpointed close, then a published
snapshot so readers and analysts see the report. A killed writer leaves the mirror as it was.

Reports live in the company's own mirror file (its shard), next to its entities. A stored run does not
move the change log, so the transaction records a data version of kind ``reports``: publication keys
on the data version, so the run reaches a new snapshot, and catch-up copies the report tables whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.reports import ReportRun, StoredRun, store_run
from smartsync_pipeline.mirror.schema import record_data_version
from smartsync_pipeline.mirror.snapshots import SnapshotStore, content_key, mirror_tables, read_state_rows


@dataclass
class ReportStore:
    """Stores report runs of the companies of one ``Home``, each in its own company's mirror."""

    home: Home
    lock_timeout: float = 900.0

    def write(self, run: ReportRun, cells: Sequence[tuple[Any, ...]], *, today: date) -> tuple[StoredRun, int]:
        """Store one run; returns what was recorded and the snapshot generation that shows it."""
        db = MirrorDatabase(self.home, run.realm_id, lock_timeout=self.lock_timeout)
        with db.locked():
            db.discard_shadow()
            with db.connect() as con:
                con.execute("BEGIN TRANSACTION")
                try:
                    stored = store_run(con, run, cells, today=today)
                    record_data_version(con, "reports")
                    con.execute("COMMIT")
                except BaseException:
                    with suppress(duckdb.Error):
                        con.execute("ROLLBACK")
                    raise
                state = read_state_rows(con)
                key = content_key(con)
                tables = mirror_tables(con)
            info = SnapshotStore(self.home, run.realm_id).publish(db.path, state, content_key=key, tables=tables)
        return stored, info.generation

"""Writing report runs into the mirror with the sync engine's discipline: the writer lock, one DuckDB
transaction (cells + run log), a checkpointed close, then a published snapshot so readers and analysts
see the report. A killed writer leaves the mirror as it was."""

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
from smartsync_pipeline.mirror.snapshots import SnapshotStore, content_key, read_state_rows


@dataclass
class ReportStore:
    """Stores report runs of the companies of one ``Home``."""

    home: Home
    lock_timeout: float = 900.0

    def __post_init__(self) -> None:
        self.db = MirrorDatabase(self.home)
        self.snapshots = SnapshotStore(self.home)

    def write(self, run: ReportRun, cells: Sequence[tuple[Any, ...]], *, today: date) -> tuple[StoredRun, int]:
        """Store one run; returns what was recorded and the snapshot generation that shows it."""
        with self.db.locked(self.lock_timeout):
            self.db.discard_shadow()
            with self.db.connect() as con:
                con.execute("BEGIN TRANSACTION")
                try:
                    stored = store_run(con, run, cells, today=today)
                    con.execute("COMMIT")
                except BaseException:
                    with suppress(duckdb.Error):
                        con.execute("ROLLBACK")
                    raise
                state = read_state_rows(con)
                key = content_key(con)
            info = self.snapshots.publish(self.db.path, state, content_key=key)
        return stored, info.generation

"""``MirrorSyncResource``: how Dagster code reaches the one sync engine and the mirror's read side.

Configuration is only a path; nothing is opened when Dagster loads the code location or initialises
the resource. The engine opens DuckDB inside a sync; sensors and schedules only read the snapshot
state (a JSON file); checks read published snapshots.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotInfo, SnapshotReader, SnapshotStore
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.sync.engine import SyncEngine


class MirrorSyncResource(dg.ConfigurableResource):
    """The smartsync state directory, and the engine, snapshots and inbox that live in it."""

    smartsync_home: str = Field(
        default="",
        description="SMARTSYNC_HOME to use; empty means the SMARTSYNC_HOME environment variable "
        "(or ./.smartsync) of the process that runs the code.",
    )

    def home(self) -> Home:
        return Home(Path(self.smartsync_home).resolve()) if self.smartsync_home else Home.from_env()

    def engine(self) -> SyncEngine:
        """The sync engine (creates the home's folders; opens no database until it syncs)."""
        return SyncEngine(self.home())

    def snapshot_state(self) -> SnapshotInfo | None:
        """The newest published sync state, read from JSON: never opens DuckDB."""
        return SnapshotStore(self.home()).current()

    def snapshot_reader(self) -> SnapshotReader:
        return SnapshotReader(self.home())

    def mirror(self) -> MirrorDatabase:
        """The authoritative mirror file, for short audits under the writer lock."""
        return MirrorDatabase(self.home())

    def connected_companies(self) -> list[str]:
        """Realms with stored credentials (company files only, no database)."""
        return CompanyStore(self.home()).realms()

    def inbox(self) -> WebhookInbox | None:
        """The webhook inbox, or None while the receiver has never stored anything."""
        path = self.home().inbox_path
        return WebhookInbox(path) if path.exists() else None

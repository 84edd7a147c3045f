"""``MirrorSyncResource``: how Dagster code reaches the one sync engine and the mirror's read side.

Configuration is only a path; nothing is opened when Dagster loads the code location or initialises
the resource. The engine opens DuckDB inside a sync; sensors and schedules only read the fleet state
index (SQLite); checks read published snapshots, one company at a time.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.fleet_state import FleetState, FleetView
from smartsync_pipeline.mirror.snapshots import SnapshotReader
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

    def snapshot_state(self) -> FleetView | None:
        """Every company's last sync per entity, from the fleet state index (never opens DuckDB);
        None while nothing was ever synced."""
        view = self.fleet_state().view()
        synced = any(row.get("last_sync_at") for rows in view.state.values() for row in rows.values())
        return view if synced else None

    def fleet_state(self) -> FleetState:
        """The fleet state index: ``stale(now)`` costs in proportion to the stale (company, entity)s."""
        return FleetState(self.home())

    def snapshot_reader(self) -> SnapshotReader:
        return SnapshotReader(self.home())

    def mirror(self, realm_id: str | None = None) -> MirrorDatabase:
        """One company's authoritative mirror file, for short audits under its writer lock."""
        return MirrorDatabase(self.home(), realm_id)

    def realms_with_mirror(self) -> list[str]:
        """Companies whose shard holds a mirror file (synced at least once), sorted."""
        home = self.home()
        return [r for r in home.realm_ids() if home.realm(r).mirror_path.exists()]

    def connected_companies(self) -> list[str]:
        """Realms with stored credentials (company files only, no database)."""
        return CompanyStore(self.home()).realms()

    def inbox(self) -> WebhookInbox | None:
        """The webhook inbox, or None while the receiver has never stored anything."""
        path = self.home().inbox_path
        return WebhookInbox(path) if path.exists() else None

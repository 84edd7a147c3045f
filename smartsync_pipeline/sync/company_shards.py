"""A company's shard joining and leaving the fleet: connect bookkeeping, ``disconnect [--purge]``.

Disconnecting waits for the company's running syncs and writer (bounded), so nothing of it is
mid-write; it touches nothing of any other company. Without ``purge`` the data stays (mirror,
snapshots, archive) and the credential files are parked inside the shard: the company is no longer
connected, synced, indexed for sensors or in ``analyst.sql``. With ``purge`` the shard and the
credentials are deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime

from smartsync_pipeline.durable_files import fsync_dir, write_atomically
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.analyst import write_script
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.fleet_state import FleetState
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.sync.engine import SyncEngine
from smartsync_pipeline.sync.errors import SyncError


@dataclass
class DisconnectReport:
    realm_id: str
    purged: bool
    removed: list[str] = field(default_factory=list)  # paths deleted (purge) or parked
    kept_data: bool = False


def mark_connected(home: Home, realm_id: str) -> None:
    """After ``connect``: the company is due for a sync in the fleet index, and a company that was
    disconnected (data kept) is back in ``analyst.sql``."""
    shard = home.realm(realm_id)
    reconnected = shard.disconnected_marker.exists()
    shard.disconnected_marker.unlink(missing_ok=True)
    if shard.parked_credentials_dir.exists():
        shutil.rmtree(shard.parked_credentials_dir, ignore_errors=True)  # superseded by the new connect
    FleetState(home).register(realm_id)
    if reconnected or shard.current_link.is_symlink():
        write_script(home)


def disconnect_company(home: Home, realm_id: str, *, purge: bool = False, timeout: float = 600.0) -> DisconnectReport:
    """Stop syncing ``realm_id``; with ``purge`` also delete its data and credentials."""
    store = CompanyStore(home)
    shard = home.realm(realm_id)
    connected = realm_id in store.realms()
    if not connected and not shard.root.exists():
        raise SyncError(f"company {realm_id!r} is neither connected nor has data under {home.realms_dir}")
    report = DisconnectReport(realm_id, purge)
    engine = SyncEngine(home)
    with contextlib.ExitStack() as held:
        # Running syncs (incremental, full) and the writer of this company finish first.
        held.enter_context(engine.realm_lock(realm_id).exclusive(timeout))
        held.enter_context(engine.full_lock(realm_id).exclusive(timeout))
        if shard.mirror_path.exists():
            held.enter_context(MirrorDatabase(home, realm_id).locked(timeout))
        if connected:
            with store.tokens(realm_id).lock(timeout):
                report.removed += _credentials(store, realm_id, shard.parked_credentials_dir, purge)
        FleetState(home).remove(realm_id)
        if purge:
            if shard.root.exists():
                shutil.rmtree(shard.root)
                fsync_dir(home.realms_dir)
                report.removed.append(str(shard.root))
        else:
            shard.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(shard.disconnected_marker, datetime.now(UTC).isoformat() + "\n", mode=0o600)
            report.kept_data = shard.mirror_path.exists()
    write_script(home)
    return report


def _credentials(store: CompanyStore, realm_id: str, parking: os.PathLike[str], purge: bool) -> list[str]:
    """Delete (purge) or park the company's connection and token files; returns their old paths."""
    moved = []
    # The refresh-in-flight marker goes with the tokens it describes (see qbo/credentials.py).
    for path in (store.connection_path(realm_id), store.tokens_path(realm_id), store.tokens(realm_id).refresh_path):
        if not path.exists():
            continue
        if purge:
            path.unlink()
        else:
            os.makedirs(parking, mode=0o700, exist_ok=True)
            os.replace(path, os.path.join(parking, path.name))
        moved.append(str(path))
    if moved:
        fsync_dir(store.home.companies_dir)
    return moved

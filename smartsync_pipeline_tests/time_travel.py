"""Make a mirror look older than it is, the honest way: move its recorded sync times back and
republish, exactly as if the last sync had happened that long ago. Works across processes, no sleeping."""

from __future__ import annotations

from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotStore, content_key, read_state_rows


def age_mirror(home: Home, seconds: float, entity: str | None = None, realm_id: str | None = None) -> None:
    db = MirrorDatabase(home, realm_id)
    with db.locked():
        with db.connect() as con:
            where = "WHERE entity = ?" if entity else ""
            con.execute(
                f"UPDATE sync_state SET last_sync_at = last_sync_at - to_microseconds(?::BIGINT) {where}",
                [int(seconds * 1_000_000), *([entity] if entity else [])],
            )
            state, key = read_state_rows(con), content_key(con)
        SnapshotStore(home, db.realm_id).publish(db.path, state, content_key=key)

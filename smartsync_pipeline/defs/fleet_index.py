"""Where the fleet scheduler finds the companies it has to look at, without reading the whole fleet.

``FleetIndex`` is the shape of the fleet state index (``FleetState`` from per-company storage:
``stale(now)`` is one index range scan whose cost follows the answer, ``of(realm)`` one company's
rows). ``fleet_index`` uses it when the resource offers it and otherwise falls back to
``SyncStateIndex``, the same questions answered from the single published sync state (a scan of the
whole state: correct, but O(fleet) per tick; only a stand-in until the index is there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.staleness import SyncState
from smartsync_pipeline.entities import ENTITIES


class LastSync(Protocol):
    @property
    def last_sync_at(self) -> datetime | None: ...


class FleetIndex(Protocol):
    """The two questions the fleet scheduler asks every tick."""

    def stale(self, now: datetime) -> Mapping[str, Sequence[str]]:
        """Companies with entities past their warn window at ``now`` (or never synced): realm -> names."""
        ...

    def of(self, realm_id: str) -> Mapping[str, LastSync]:
        """One company's last sync per entity (entities never synced may be missing)."""
        ...


@dataclass(frozen=True)
class _Row:
    last_sync_at: datetime | None


class SyncStateIndex:
    """``FleetIndex`` over a published sync state (realm -> entity -> row) and the connected realms."""

    def __init__(self, state: SyncState, realms: Iterable[str]) -> None:
        self.state = state
        self.realms = sorted(set(realms) | set(state))

    def of(self, realm_id: str) -> dict[str, _Row]:
        return self._rows(realm_id)

    def _rows(self, realm_id: str) -> dict[str, _Row]:
        rows = self.state.get(realm_id, {})
        out = {}
        for spec in ENTITIES:
            value = (rows.get(spec.name) or {}).get("last_sync_at")
            out[spec.name] = _Row(datetime.fromisoformat(value) if isinstance(value, str) else value)
        return out

    def stale(self, now: datetime) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for realm in self.realms:
            rows = self._rows(realm)
            names = [
                spec.name
                for spec in ENTITIES
                if rows[spec.name].last_sync_at is None or rows[spec.name].last_sync_at + spec.freshness.warn <= now
            ]
            if names:
                out[realm] = names
        return out


def fleet_index(mirror_sync: MirrorSyncResource, realms: Iterable[str]) -> FleetIndex:
    """The fleet state index when the resource has one (``fleet_state()``), else the fallback."""
    index = getattr(mirror_sync, "fleet_state", None)
    if callable(index):
        return index()
    info = mirror_sync.snapshot_state()
    return SyncStateIndex(info.state if info else {}, realms)

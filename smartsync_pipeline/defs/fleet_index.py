"""Where the fleet scheduler finds the companies it has to look at, without reading the whole fleet.

``FleetIndex`` is the shape the scheduler needs; the fleet state index (``mirror/fleet_state.py``,
``FleetState``) is what implements it: ``stale(now)`` is one index range scan whose cost follows the
answer, ``of(realm)`` one company's rows. A tick never reads every company's state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource


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


def fleet_index(mirror_sync: MirrorSyncResource) -> FleetIndex:
    """The home's fleet state index."""
    return mirror_sync.fleet_state()

"""The live company of one realm: the immutable seeded base plus a mutable overlay of writes.

Reads see the overlay first (written objects), then deletions (tombstones), then the base. Written
objects are replaced whole (copy on write), so a reader holding one never sees a half-applied write.
All writes of a realm are serialised by the realm lock; reads that walk the overlay take it too.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from smartsync_pipeline.entities.registry import ENTITIES, EntitySpec
from smartsync_pipeline.sandbox.base_tables import BaseTable
from smartsync_pipeline.sandbox.clock import SandboxClock
from smartsync_pipeline.sandbox.company import SeededCompany
from smartsync_pipeline.sandbox.qbo_time import iso


@dataclass(frozen=True)
class Change:
    """One object change, as the simulator reports it and webhooks announce it."""

    realm_id: str
    entity: str
    id: str
    op: str  # create | update | delete
    sync_token: str
    last_updated: str
    epoch: float
    event: str  # webhook operation: Create | Update | Delete | Void

    def as_dict(self) -> dict[str, str]:
        return {
            "entity": self.entity,
            "id": self.id,
            "op": self.op,
            "sync_token": self.sync_token,
            "last_updated": self.last_updated,
        }


class EntityTable:
    """One entity of one realm: base rows (Id 1..n) and the overlay of created/updated/deleted ids."""

    def __init__(self, spec: EntitySpec, base: BaseTable) -> None:
        self.spec = spec
        self.base = base
        self.overlay: dict[int, dict[str, Any]] = {}
        self.overlay_lut: dict[int, float] = {}
        self.tombstones: dict[int, dict[str, Any]] = {}
        self.tombstone_lut: dict[int, float] = {}
        self.masked = np.zeros(base.n, dtype=bool)  # base rows replaced by the overlay or deleted
        self._deleted_base: list[int] = []  # sorted base ids that were deleted
        self._new_live: list[int] = []  # sorted live ids beyond the base
        self.next_id = base.n + 1

    # -- reads -------------------------------------------------------------------------------------
    def get(self, object_id: int) -> dict[str, Any] | None:
        """The current object, or None when it never existed or was deleted."""
        obj = self.overlay.get(object_id)
        if obj is not None:
            return obj
        if object_id in self.tombstones or not 1 <= object_id <= self.base.n:
            return None
        return self.base.render(object_id - 1)

    def last_updated(self, object_id: int) -> float:
        if object_id in self.overlay_lut:
            return self.overlay_lut[object_id]
        return float(self.base.lut[object_id - 1])

    def live_count(self) -> int:
        return self.base.n - len(self._deleted_base) + len(self._new_live)

    def live_ids_page(self, start: int, count: int) -> list[int]:
        """Live ids in Id order from 0-based position ``start``: O(page + deletions), not O(n)."""
        out: list[int] = []
        base_live = self.base.n - len(self._deleted_base)
        position = start
        if position < base_live:
            # The position-th live base id: skip every deleted id at or below it.
            candidate = position + 1
            for deleted in self._deleted_base:
                if deleted <= candidate:
                    candidate += 1
                else:
                    break
            skip = bisect.bisect_left(self._deleted_base, candidate)
            while candidate <= self.base.n and len(out) < count:
                if skip < len(self._deleted_base) and self._deleted_base[skip] == candidate:
                    skip += 1
                else:
                    out.append(candidate)
                candidate += 1
            position = base_live
        if len(out) < count:
            first_new = max(0, start - base_live)
            out.extend(self._new_live[first_new : first_new + count - len(out)])
        return out

    def overlay_items(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return iter(list(self.overlay.items()))

    # -- writes (caller holds the realm lock) ---------------------------------------------------------
    def put(self, obj: dict[str, Any], lut: float) -> None:
        object_id = int(obj["Id"])
        if object_id <= self.base.n:
            self.masked[object_id - 1] = True
        elif object_id not in self.overlay:
            bisect.insort(self._new_live, object_id)
        self.overlay[object_id] = obj
        self.overlay_lut[object_id] = lut
        self.next_id = max(self.next_id, object_id + 1)

    def delete(self, object_id: int, tombstone: dict[str, Any], lut: float) -> None:
        self.overlay.pop(object_id, None)
        self.overlay_lut.pop(object_id, None)
        if object_id <= self.base.n:
            self.masked[object_id - 1] = True
            if object_id not in self.tombstones:
                bisect.insort(self._deleted_base, object_id)
        else:
            index = bisect.bisect_left(self._new_live, object_id)
            if index < len(self._new_live) and self._new_live[index] == object_id:
                del self._new_live[index]
        self.tombstones[object_id] = tombstone
        self.tombstone_lut[object_id] = lut
        self.next_id = max(self.next_id, object_id + 1)


ChangeListener = Callable[["Company", list[Change], list[dict[str, Any]]], None]


class Company:
    """The live data of one realm and its write log hooks (journal, webhooks)."""

    def __init__(self, seeded: SeededCompany, clock: SandboxClock) -> None:
        self.seeded = seeded
        self.realm_id = seeded.realm_id
        self.clock = clock
        self.lock = threading.RLock()
        self.tables: dict[str, EntityTable] = {
            spec.name: EntityTable(spec, seeded.tables[spec.name]) for spec in ENTITIES
        }
        self.listeners: list[ChangeListener] = []

    def table(self, entity: str) -> EntityTable:
        return self.tables[entity]

    def get(self, entity: str, object_id: str | int) -> dict[str, Any] | None:
        try:
            numeric = int(str(object_id))
        except ValueError:
            return None
        with self.lock:
            return self.tables[entity].get(numeric)

    def commit(self, objects: list[tuple[str, dict[str, Any], str, str, str]], now: float) -> list[Change]:
        """Store written objects and announce them. Each item is (entity, object, op, event, sync
        token); for a delete the object is the tombstone and the token the last one it had. The caller
        holds the lock."""
        changes: list[Change] = []
        records: list[dict[str, Any]] = []
        stamp = iso(now)
        for entity, obj, op, event, sync in objects:
            table = self.tables[entity]
            if op == "delete":
                table.delete(int(obj["Id"]), obj, now)
                records.append({"t": "delete", "entity": entity, "obj": obj, "lut": now})
            else:
                table.put(obj, now)
                records.append({"t": "put", "entity": entity, "obj": obj, "lut": now})
            changes.append(Change(self.realm_id, entity, str(obj["Id"]), op, sync, stamp, now, event))
        for listener in self.listeners:
            listener(self, changes, records)
        return changes

    def replay(self, record: dict[str, Any]) -> None:
        """Apply one journal record (restart): no listeners, no side effects — it is an after-image."""
        with self.lock:
            table = self.tables[record["entity"]]
            if record["t"] == "delete":
                table.delete(int(record["obj"]["Id"]), record["obj"], float(record["lut"]))
            else:
                table.put(record["obj"], float(record["lut"]))

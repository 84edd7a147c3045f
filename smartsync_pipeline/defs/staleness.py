"""Which (realm, entity) mirrors are too old: the per-realm freshness decision.

Dagster's own freshness status is per asset (latest materialization of any partition), so one fresh
company would hide a stale one. This decision is per realm, from the sync state published with the
snapshots (JSON, no DuckDB), and pure: callers pass ``now`` so tests control the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from smartsync_pipeline.entities import ENTITIES, EntitySpec

SyncState = Mapping[str, Mapping[str, Mapping[str, Any]]]  # realm -> entity -> sync_state row


class Staleness(Enum):
    FRESH = "fresh"
    WARN = "warn"  # past the warn window: refresh now, before anyone is refused data
    FAIL = "fail"  # past the fail window: readers would refuse it as too old
    NEVER = "never synced"


@dataclass(frozen=True)
class EntityAge:
    """How old one entity's mirror is in one realm, judged against the entity's windows."""

    realm_id: str
    entity: str
    last_sync_at: datetime | None
    age: timedelta | None
    status: Staleness
    warn_window: timedelta
    fail_window: timedelta

    @property
    def is_stale(self) -> bool:
        return self.status is not Staleness.FRESH

    def describe(self) -> str:
        if self.age is None:
            return f"realm {self.realm_id}: {self.entity} never synced"
        failed = self.status is Staleness.FAIL
        window, label = (self.fail_window, "fail window") if failed else (self.warn_window, "warn window")
        relation = ">" if self.is_stale else "<"
        age, limit = format_age(self.age), format_age(window)
        return f"realm {self.realm_id}: {self.entity} is {age} old ({relation} {label} {limit})"


def format_age(age: timedelta) -> str:
    """``2h 05m``, ``14m 03s`` or ``9s``: short enough for a check description."""
    seconds = max(0, int(age.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _last_sync(state: SyncState, realm_id: str, entity: str) -> datetime | None:
    value = state.get(realm_id, {}).get(entity, {}).get("last_sync_at")
    return datetime.fromisoformat(value) if value else None


def entity_age(state: SyncState, realm_id: str, spec: EntitySpec, now: datetime) -> EntityAge:
    last = _last_sync(state, realm_id, spec.name)
    fail, warn = spec.freshness.fail, spec.freshness.warn
    if last is None:
        return EntityAge(realm_id, spec.name, None, None, Staleness.NEVER, warn, fail)
    age = now - last
    status = Staleness.FAIL if age > fail else Staleness.WARN if age > warn else Staleness.FRESH
    return EntityAge(realm_id, spec.name, last, age, status, warn, fail)


def entity_ages(
    state: SyncState, realm_id: str, now: datetime, specs: Iterable[EntitySpec] = ENTITIES
) -> list[EntityAge]:
    """Every entity's age in ``realm_id``, in registry order."""
    return [entity_age(state, realm_id, spec, now) for spec in specs]


def stale_entities(state: SyncState | None, realm_id: str, now: datetime) -> list[str]:
    """Entity names of ``realm_id`` past their warn window or never synced, in registry order."""
    return [a.entity for a in entity_ages(state or {}, realm_id, now) if a.is_stale]

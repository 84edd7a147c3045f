"""What the fleet scheduler needs to know about each entity, read from the one entity registry.

Times are plain seconds (floats) everywhere in ``fleet``: the simulator runs millions of decisions and
Dagster code converts its datetimes once at the edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smartsync_pipeline.entities import ENTITIES, EntitySpec

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True)
class EntityRule:
    """One entity as the scheduler sees it.

    ``window`` is the entity's fail window (the reader's default ``max_age``): the mirror is within
    window while it holds every change QBO had ``window`` seconds ago. ``via_cdc`` says whether one CDC
    call can cover it together with the company's other entities; query-only entities cost calls of
    their own (a changed-since query plus an id list to find deletes).
    """

    name: str
    window: float
    via_cdc: bool = True

    def __post_init__(self) -> None:
        if self.window < MINUTE:
            raise ValueError(f"{self.name}: a freshness window under one minute cannot be scheduled")


def covered_by_cdc(spec: EntitySpec) -> bool:
    """Whether QBO's CDC reports this entity. The registry declares a sync strategy per entity once it
    has one (issue 12: query-only entities such as TaxCode); until then every entity is CDC-capable."""
    strategy = getattr(spec, "sync_strategy", None)
    if strategy is None:
        return True
    return "cdc" in str(getattr(strategy, "value", strategy)).lower()


def rules_from_registry(specs: Iterable[EntitySpec] = ENTITIES) -> tuple[EntityRule, ...]:
    """One rule per registry entity, in registry order."""
    return tuple(EntityRule(s.name, s.freshness.fail.total_seconds(), covered_by_cdc(s)) for s in specs)

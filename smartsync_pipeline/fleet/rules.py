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
    call can cover it together with the company's other entities; the others (query-only entities and
    singletons) cost a listing of their own each time, and the engine lists them on a sweep only once
    their ``warn`` window (default: half the fail window) has passed since their last sync.
    """

    name: str
    window: float
    via_cdc: bool = True
    warn: float = 0.0  # 0: half the window

    def __post_init__(self) -> None:
        if self.window < MINUTE:
            raise ValueError(f"{self.name}: a freshness window under one minute cannot be scheduled")
        if not self.warn:
            object.__setattr__(self, "warn", self.window / 2)
        if not 0 < self.warn < self.window:
            raise ValueError(f"{self.name}: the warn window must be shorter than the fail window")


def rules_from_registry(specs: Iterable[EntitySpec] = ENTITIES) -> tuple[EntityRule, ...]:
    """One rule per registry entity, in registry order; the registry's sync strategy says which ones
    one CDC call covers (query-only entities and singletons need listings of their own)."""
    return tuple(
        EntityRule(s.name, s.freshness.fail.total_seconds(), s.in_cdc, s.freshness.warn.total_seconds()) for s in specs
    )

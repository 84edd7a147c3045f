"""What a sync did, for the CLI, Dagster metadata and the smart reader's provenance."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class EntitySyncReport:
    entity: str
    mode: str  # full | incremental (CDC) | listing (outside CDC) | not_due (a sweep left it alone)
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rows_active: int = 0
    rows_deleted: int = 0
    fetched: int = 0
    watermark_before: datetime | None = None
    watermark_after: datetime | None = None
    changed_ids: list[tuple[str, str]] = field(default_factory=list)
    fallback_reason: str = ""  # why an incremental request ran as full
    repaired: int = 0  # rows whose content differed from QBO's at an unchanged SyncToken (verify_content)

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted + self.repaired


@dataclass
class SyncReport:
    """One sync of one realm: counts per entity, API cost, the change-id range and the chain head."""

    realm_id: str
    sync_id: str
    trigger: str
    run_id: str | None
    started_at: datetime
    finished_at: datetime | None = None
    entities: dict[str, EntitySyncReport] = field(default_factory=dict)
    api_calls: int = 0
    bytes_received: int = 0
    retries: int = 0
    change_id_first: int | None = None
    change_id_last: int | None = None
    chain_head_hash: str = ""
    snapshot_generation: int | None = None
    snapshot_method: str | None = None  # how the publication made its file: copy, catch-up, None (no new data)
    lock_wait_seconds: float = 0.0
    # Seconds per phase: states, fetch (QBO), open, apply, change_log, commit, publish; the smart reader
    # adds record (Dagster) and answer. See ARCHITECTURE.md, "Stale reads".
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    verify_content: bool = False  # unchanged-token rows were compared with QBO's content

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - start

    def add_time(self, phase: str, seconds: float) -> None:
        self.timings[phase] = self.timings.get(phase, 0.0) + seconds

    @property
    def duration_seconds(self) -> float:
        end = self.finished_at or self.started_at
        return (end - self.started_at).total_seconds()

    def total(self, what: str) -> int:
        return sum(getattr(e, what) for e in self.entities.values())

    @property
    def changed(self) -> int:
        return self.total("changed")

    @property
    def mode(self) -> str:
        # Listing (entities outside CDC) and not-due entities are how an incremental sync treats them.
        modes = {"incremental" if e.mode in ("listing", "not_due") else e.mode for e in self.entities.values()}
        return modes.pop() if len(modes) == 1 else "mixed"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (timestamps as ISO strings)."""

        def convert(v: Any) -> Any:
            if isinstance(v, datetime):
                return v.isoformat()
            if isinstance(v, dict):
                return {k: convert(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [convert(x) for x in v]
            return v

        out = convert(asdict(self))
        out["duration_seconds"] = round(self.duration_seconds, 3)
        out["mode"] = self.mode
        for key in ("created", "updated", "deleted", "unchanged", "repaired"):
            out[key] = self.total(key)
        return out

"""Getting changes out of QBO, before the mirror is touched: CDC for incremental syncs, paging for
full syncs. Nothing here holds the mirror lock, so slow API calls never block other writers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from smartsync_pipeline.entities import EntitySpec
from smartsync_pipeline.mirror.apply import stage
from smartsync_pipeline.qbo.query import Query

Progress = Callable[[str, int, int | None], None]  # (entity, fetched so far, total or None)


class CDCSource(Protocol):
    def cdc(self, entities: Sequence[str], changed_since: datetime) -> Any: ...


@dataclass
class CDCFetch:
    """Changes per entity from CDC, and the entities whose changes did not fit and need a full sync."""

    staged: dict[str, pa.Table] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    overflowed: list[str] = field(default_factory=list)
    server_time: datetime | None = None


def fetch_cdc(client: CDCSource, entities: Sequence[str], since: datetime) -> CDCFetch:
    """One CDC call for all entities; a full response is split by entity and asked again, so nothing
    is ever silently truncated. QBO's CDC has no upper time bound and no paging, so an entity that
    still fills a response on its own is handed back in ``overflowed`` for a full sync."""
    out = CDCFetch()
    _fetch_cdc_into(client, list(entities), since, out)
    return out


def _fetch_cdc_into(client: CDCSource, entities: list[str], since: datetime, out: CDCFetch) -> None:
    result = client.cdc(entities, since)
    if out.server_time is None or (result.server_time and result.server_time < out.server_time):
        # The earliest response time is the safe watermark for everything fetched in this sync.
        out.server_time = result.server_time
    if result.is_full:
        if len(entities) == 1:
            out.overflowed.append(entities[0])
            return
        mid = len(entities) // 2
        _fetch_cdc_into(client, entities[:mid], since, out)
        _fetch_cdc_into(client, entities[mid:], since, out)
        return
    for name in entities:
        changes = result.entities.get(name)
        active = list(changes.active) if changes else []
        deleted = list(changes.deleted) if changes else []
        out.staged[name] = stage([*active, *deleted_stubs(deleted)])
        out.counts[name] = len(active) + len(deleted)


def deleted_stubs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(o, status="Deleted") for o in objects]


@dataclass
class FullFetch:
    """A complete listing of one entity, one Parquet file per page (sync/full_listings.py)."""

    entity: str
    files: list[Path]
    fetched: int
    started_server_time: datetime | None


class StagingArea:
    """Per-sync scratch space under SMARTSYNC_HOME; removed when the sync ends (or by the next one)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if root.exists():
            shutil.rmtree(root)  # a previous sync of this realm died before cleaning up
        root.mkdir(parents=True)

    def entity_dir(self, entity: str) -> Path:
        d = self.root / entity
        d.mkdir(exist_ok=True)
        return d

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def confirm_missing(
    client: Any, spec: EntitySpec, candidate_ids: list[str], chunk: int = 100
) -> tuple[list[str], list[dict]]:
    """Ids the full listing did not return are only deleted if QBO also cannot find them by Id
    (an object can slip between pages when something else is deleted meanwhile). Returns the
    confirmed-missing ids and the objects that do still exist."""
    still_there: list[dict] = []
    for i in range(0, len(candidate_ids), chunk):
        ids = candidate_ids[i : i + chunk]
        q = Query.select(spec.name).where_in("Id", ids).max_results(len(ids))
        if spec.name_list:
            q = q.include_inactive()
        still_there.extend(client.query(q).items)
    found = {str(o.get("Id")) for o in still_there}
    return [i for i in candidate_ids if i not in found], still_there

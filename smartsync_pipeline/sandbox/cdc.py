"""Change data capture: every object of the asked entities changed since a time, in one response.

Base rows are found with a bisect on their sorted LastUpdatedTime; written and deleted objects come
from the overlay. Per entity: actives by LastUpdatedTime (then Id), then deletes. At most 1000 objects
in the whole response (Intuit's wording); a full response is the caller's signal to narrow the window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smartsync_pipeline.entities.registry import UnknownEntityError, entity
from smartsync_pipeline.sandbox import api_errors as errors
from smartsync_pipeline.sandbox.qbo_time import TimeFormatError, parse_time
from smartsync_pipeline.sandbox.store import Company, EntityTable

MAX_OBJECTS = 1000
LOOKBACK_SECONDS = 30 * 86_400


def _changed_active_ids(table: EntityTable, since: float) -> list[int]:
    first = int(np.searchsorted(table.base.lut, since, side="left"))
    rows = np.arange(first, table.base.n)
    rows = rows[~table.masked[first:]]
    base = [(float(table.base.lut[r]), int(r) + 1) for r in rows]
    written = [(lut, oid) for oid, lut in table.overlay_lut.items() if lut >= since]
    return [oid for _, oid in sorted(base + written)]


def _changed_deleted_ids(table: EntityTable, since: float) -> list[int]:
    return [oid for lut, oid in sorted((lut, oid) for oid, lut in table.tombstone_lut.items() if lut >= since)]


def parse_cdc_request(entities_param: str | None, changed_since: str | None, now: float) -> tuple[list[str], float]:
    """Validate ``entities`` and ``changedSince`` (within 30 days of the sandbox clock)."""
    if not entities_param:
        raise errors.validation(errors.REQUIRED_MISSING, "Required param missing", "entities is required", "entities")
    if not changed_since:
        raise errors.validation(
            errors.REQUIRED_MISSING, "Required param missing", "changedSince is required", "changedSince"
        )
    names: list[str] = []
    for raw in entities_param.split(","):
        try:
            spec = entity(raw.strip())
        except UnknownEntityError:
            raise errors.validation(
                errors.INVALID_VALUE, "Invalid entity", f"CDC does not support entity {raw.strip()!r}", "entities"
            ) from None
        if not spec.in_cdc:
            raise errors.validation(
                errors.INVALID_VALUE, "Invalid entity", f"CDC does not support entity {spec.name!r}", "entities"
            )
        if spec.name not in names:
            names.append(spec.name)
    try:
        since = parse_time(changed_since)
    except TimeFormatError as exc:
        raise errors.validation(errors.INVALID_VALUE, "Invalid changedSince", str(exc), "changedSince") from None
    if since < now - LOOKBACK_SECONDS:
        raise errors.validation(
            errors.CDC_TOO_OLD,
            "Invalid changedSince",
            f"Operation cdc with changedSince date {changed_since} which is older than fixed days is not "
            "supported. changedSince must be within the last 30 days.",
            "changedSince",
        )
    return names, since


def run_cdc(company: Company, names: list[str], since: float) -> list[dict[str, Any]]:
    """The ``QueryResponse`` list of a CDCResponse: one entry per entity, in request order."""
    budget = MAX_OBJECTS
    out: list[dict[str, Any]] = []
    with company.lock:
        for name in names:
            table = company.table(name)
            active = _changed_active_ids(table, since)[:budget]
            budget -= len(active)
            deleted = _changed_deleted_ids(table, since)[:budget]
            budget -= len(deleted)
            objects = [table.get(oid) for oid in active]
            objects += [dict(table.tombstones[oid]) for oid in deleted]
            if objects:
                out.append({name: objects, "startPosition": 1, "maxResults": len(objects), "totalCount": len(objects)})
            else:
                out.append({})
    return out

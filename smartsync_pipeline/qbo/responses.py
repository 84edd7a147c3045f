"""The shapes the client returns, and how QBO's query and CDC envelopes become them.

Nothing is dropped: a CDC response's objects are split into active and deleted per entity (deleted
ones carry ``"status": "Deleted"``), entities nobody asked for are kept too, and a response at
QBO's 1000-object ceiling is flagged ``is_full`` so the caller narrows the window instead of
silently losing changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smartsync_pipeline.qbo.errors import QBOFault

CDC_MAX_OBJECTS = 1000
_ENVELOPE_KEYS = {"startposition", "maxresults", "totalcount"}


@dataclass
class QueryPage:
    """One answer of the query endpoint."""

    entity: str
    items: list[dict[str, Any]]
    start_position: int | None = None
    max_results: int | None = None
    total_count: int | None = None


@dataclass
class CDCEntityChanges:
    """What changed for one entity: full objects that exist, and tombstones (Id + MetaData) of
    deleted ones."""

    entity: str
    active: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.active) + len(self.deleted)


@dataclass
class CDCResult:
    """One CDC call. ``is_full`` means the server's ceiling was reached: narrow the window and ask again."""

    changed_since: datetime
    server_time: datetime
    entities: dict[str, CDCEntityChanges]
    object_count: int
    is_full: bool


def parse_qbo_time(value: Any) -> datetime | None:
    """QBO's ``time``/``LastUpdatedTime`` (ISO-8601 with offset, maybe ``Z`` or milliseconds) as an
    aware datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _envelope(doc: Any, key: str, status: int) -> Any:
    if not isinstance(doc, Mapping) or key not in doc:
        raise QBOFault(f"the response has no {key}", http_status=status)
    return doc[key]


def parse_query_response(doc: Any, entity: str, status: int = 200) -> QueryPage:
    """``{"QueryResponse": {"Bill": [...], "startPosition": 1, "maxResults": n}}`` → ``QueryPage``.
    An empty page is ``{"QueryResponse": {}}``; COUNT(*) answers carry ``totalCount``."""
    body = _envelope(doc, "QueryResponse", status)
    if not isinstance(body, Mapping):
        raise QBOFault("QueryResponse is not an object", http_status=status)
    items = body.get(entity)
    if items is None:  # tolerate another spelling of the entity key
        lists = [v for k, v in body.items() if isinstance(v, list) and k.lower() not in _ENVELOPE_KEYS]
        items = lists[0] if len(lists) == 1 else []
    if not isinstance(items, list):
        items = [items] if isinstance(items, dict) else []
    return QueryPage(
        entity=entity,
        items=[i for i in items if isinstance(i, dict)],
        start_position=_int(body.get("startPosition")),
        max_results=_int(body.get("maxResults")),
        total_count=_int(body.get("totalCount")),
    )


def _is_deleted(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("status", "")).lower() == "deleted"


def parse_cdc_response(doc: Any, entities: Sequence[str], changed_since: datetime, status: int = 200) -> CDCResult:
    """``{"CDCResponse": [{"QueryResponse": [{"Bill": [...]}, {"Invoice": [...]}]}], "time": ...}``
    → ``CDCResult`` with active and deleted objects apart, for every requested entity."""
    changes = {name: CDCEntityChanges(name) for name in entities}
    responses = _envelope(doc, "CDCResponse", status)
    if isinstance(responses, Mapping):
        responses = [responses]
    if not isinstance(responses, list):
        raise QBOFault("CDCResponse is not a list", http_status=status)
    for response in responses:
        if not isinstance(response, Mapping):
            continue
        query_responses = response.get("QueryResponse") or []
        if isinstance(query_responses, Mapping):
            query_responses = [query_responses]
        for block in query_responses:
            if not isinstance(block, Mapping):
                continue
            for key, value in block.items():
                if key.lower() in _ENVELOPE_KEYS:
                    continue
                objects = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
                target = changes.setdefault(key, CDCEntityChanges(key))
                for obj in objects:
                    if isinstance(obj, dict):
                        (target.deleted if _is_deleted(obj) else target.active).append(obj)
    total = sum(c.count for c in changes.values())
    server_time = parse_qbo_time(doc.get("time")) or datetime.now(UTC)
    return CDCResult(
        changed_since=changed_since,
        server_time=server_time,
        entities=changes,
        object_count=total,
        is_full=total >= CDC_MAX_OBJECTS,
    )


__all__ = [
    "CDC_MAX_OBJECTS",
    "CDCEntityChanges",
    "CDCResult",
    "QueryPage",
    "parse_cdc_response",
    "parse_qbo_time",
    "parse_query_response",
]

"""The shapes the client returns, and how QBO's query and CDC envelopes become them.

Nothing is dropped: a CDC response's objects are split into active and deleted per entity (deleted
ones carry ``"status": "Deleted"``), entities nobody asked for are kept too, and a response at
QBO's 1000-object ceiling is flagged ``is_full`` so the caller narrows the window instead of
silently losing changes.

Nothing is guessed either: an answer of the wrong shape (an entity list that is a string or null,
items that are not objects, objects without a usable ``Id``, a CDC answer without its server
``time``) raises ``QBOFault`` instead of reading as "no objects". Read as empty, a broken page made a
full sync tombstone every row, and a broken CDC answer advanced the watermark past changes it never
delivered.
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


def _count(body: Mapping[str, Any], key: str, status: int) -> int | None:
    """An envelope number (``startPosition``, ``maxResults``, ``totalCount``): absent is None, anything
    but a whole number is a malformed answer."""
    value = body.get(key)
    if value is None:
        return None
    number = _int(value)
    if number is None or number < 0:
        raise QBOFault(f"malformed answer: {key} is {_shape(value)}, not a count", http_status=status)
    return number


def _shape(value: Any) -> str:
    """What a value is, for an error message (never the value itself: it is untrusted and may be huge)."""
    return "null" if value is None else f"a {type(value).__name__}"


def _objects(value: Any, where: str, status: int) -> list[dict[str, Any]]:
    """The objects under one entity key: a list of objects (or one object). Every object must carry a
    usable ``Id`` and, when present, a string ``SyncToken``."""
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise QBOFault(f"malformed answer: {where} is {_shape(value)}, not a list of objects", http_status=status)
    for index, obj in enumerate(value):
        if not isinstance(obj, dict):
            raise QBOFault(f"malformed answer: {where}[{index}] is {_shape(obj)}, not an object", http_status=status)
        qid = obj.get("Id")
        if isinstance(qid, bool) or not isinstance(qid, str | int) or str(qid).strip() == "":
            raise QBOFault(f"malformed answer: {where}[{index}] has no usable Id ({_shape(qid)})", http_status=status)
        token = obj.get("SyncToken")
        if token is not None and not isinstance(token, str):
            raise QBOFault(f"malformed answer: {where}[{index}].SyncToken is {_shape(token)}", http_status=status)
    return value


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
    if entity in body:
        items = _objects(body[entity], f"QueryResponse.{entity}", status)
    else:  # tolerate another spelling of the entity key, but only one: two lists are ambiguous
        others = [k for k in body if not (isinstance(k, str) and k.lower() in _ENVELOPE_KEYS)]
        if len(others) > 1:
            raise QBOFault(
                f"malformed answer: no {entity} list but {len(others)} other keys in QueryResponse", http_status=status
            )
        items = _objects(body[others[0]], f"QueryResponse.{others[0]}", status) if others else []
    return QueryPage(
        entity=entity,
        items=items,
        start_position=_count(body, "startPosition", status),
        max_results=_count(body, "maxResults", status),
        total_count=_count(body, "totalCount", status),
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
    for n, response in enumerate(responses):
        if not isinstance(response, Mapping):
            raise QBOFault(f"malformed answer: CDCResponse[{n}] is {_shape(response)}", http_status=status)
        query_responses = response.get("QueryResponse")
        if query_responses is None:
            continue
        if isinstance(query_responses, Mapping):
            query_responses = [query_responses]
        if not isinstance(query_responses, list):
            raise QBOFault(
                f"malformed answer: CDCResponse[{n}].QueryResponse is {_shape(query_responses)}", http_status=status
            )
        for b, block in enumerate(query_responses):
            if not isinstance(block, Mapping):
                raise QBOFault(f"malformed answer: QueryResponse[{b}] is {_shape(block)}", http_status=status)
            for key, value in block.items():
                if isinstance(key, str) and key.lower() in _ENVELOPE_KEYS:
                    continue
                target = changes.setdefault(key, CDCEntityChanges(key))
                for obj in _objects(value, f"QueryResponse[{b}].{key}", status):
                    (target.deleted if _is_deleted(obj) else target.active).append(obj)
    total = sum(c.count for c in changes.values())
    # The server's time becomes the next sync's watermark: without it nothing is safe to advance.
    server_time = parse_qbo_time(doc.get("time"))
    if server_time is None:
        raise QBOFault("malformed answer: the CDC response carries no valid server time", http_status=status)
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

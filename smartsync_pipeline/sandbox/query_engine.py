"""Run a parsed query against one realm's live data.

Base rows are filtered with whole-column numpy operations (their columns are cached, the base never
changes) and written objects one by one; the page is rendered only after the final order is known.
The hot path — no filter, Id order — never looks at more than the page (``live_ids_page``).
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any

import numpy as np

from smartsync_pipeline.entities.registry import EntitySpec, UnknownEntityError, entity
from smartsync_pipeline.sandbox import api_errors as errors
from smartsync_pipeline.sandbox.field_values import (
    NUMERIC_KINDS,
    FieldRef,
    LiteralError,
    UnknownFieldError,
    comparable,
    literal_for,
    read_path,
    resolve_field,
)
from smartsync_pipeline.sandbox.query_language import Condition, Query, QuerySyntaxError, parse_query
from smartsync_pipeline.sandbox.store import Company, EntityTable

# The comparison operators of the query language; each works on a scalar and on a numpy column alike.
_COMPARE = {"=": operator.eq, "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


class _Filter:
    """One WHERE condition bound to a field, evaluable on a base column or a single object."""

    def __init__(self, spec: EntitySpec, condition: Condition) -> None:
        self.field: FieldRef = resolve_field(spec, condition.field)
        self.op = condition.op
        kind = self.field.kind
        if self.op == "LIKE":
            if kind != "str":
                raise LiteralError(f"LIKE needs a text field; {self.field.name} is not text")
            pattern = "".join(".*" if ch == "%" else re.escape(ch) for ch in str(condition.value).casefold())
            self.regex = re.compile(pattern, re.DOTALL)
        elif self.op == "IN":
            self.values = tuple(literal_for(self.field, v) for v in condition.value)
        else:
            self.value = literal_for(self.field, condition.value)

    def column_mask(self, column: np.ndarray) -> np.ndarray:
        op = self.op
        if self.field.kind in NUMERIC_KINDS:
            if op == "IN":
                return np.isin(column, np.asarray(self.values, dtype=np.float64))
            with np.errstate(invalid="ignore"):
                return _COMPARE[op](column, self.value)
        n = len(column)
        if op == "LIKE":
            regex = self.regex
            return np.fromiter((v is not None and regex.fullmatch(v) is not None for v in column), bool, n)
        if op == "IN":
            wanted = set(self.values)
            return np.fromiter((v in wanted for v in column), bool, n)
        if op == "=":
            return np.asarray(column == self.value, dtype=bool)
        compare, value = _COMPARE[op], self.value
        return np.fromiter((v is not None and compare(v, value) for v in column), bool, n)

    def matches(self, obj: dict[str, Any]) -> bool:
        raw = comparable(self.field.kind, read_path(obj, self.field.path))
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            return False
        if self.op == "LIKE":
            return self.regex.fullmatch(str(raw)) is not None
        if self.op == "IN":
            return raw in self.values
        return _COMPARE[self.op](raw, self.value)


def _fault(message: str, detail: str) -> errors.ApiFault:
    return errors.validation(errors.QUERY_PARSE, message, detail)


def plan(text: str) -> tuple[Query, EntitySpec, list[_Filter], FieldRef | None]:
    """Parse and bind a query, or raise the 400 ValidationFault QBO would send."""
    try:
        query = parse_query(text)
    except QuerySyntaxError as exc:
        raise _fault("Error parsing query", f"QueryParserError: {exc}") from None
    try:
        spec = entity(query.entity)
    except UnknownEntityError:
        raise _fault("Invalid query", f"QueryValidationError: Invalid context declaration : {query.entity}") from None
    if spec.name.casefold() != query.entity.casefold():
        raise _fault("Invalid query", f"QueryValidationError: Invalid context declaration : {query.entity}")
    try:
        filters = [_Filter(spec, c) for c in query.where]
        order = resolve_field(spec, query.order_by) if query.order_by else None
    except (UnknownFieldError, LiteralError) as exc:
        raise _fault("Invalid query", f"QueryValidationError: {exc}") from None
    if spec.name_list and not any(f.field.path == "Active" for f in filters):
        filters.append(_Filter(spec, Condition("Active", "=", True)))
    return query, spec, filters, order


def _matching_ids(table: EntityTable, filters: list[_Filter]) -> tuple[np.ndarray, list[int]]:
    """(base ids, overlay ids) of live objects passing every filter."""
    mask = ~table.masked
    for f in filters:
        mask &= f.column_mask(table.base.column(f.field.path, f.field.kind))
    base_ids = np.flatnonzero(mask) + 1
    overlay_ids = [oid for oid, obj in table.overlay_items() if all(f.matches(obj) for f in filters)]
    return base_ids, overlay_ids


def _ordered(table: EntityTable, base_ids: np.ndarray, overlay_ids: list[int], order: FieldRef | None, desc: bool):
    ids = np.concatenate([base_ids, np.asarray(overlay_ids, dtype=np.int64)])
    if order is None or order.path == "Id":
        ids = np.sort(ids, kind="stable")
        return ids[::-1] if desc else ids
    base_keys = table.base.column(order.path, order.kind)[base_ids - 1]
    over_keys = [comparable(order.kind, read_path(table.overlay[oid], order.path)) for oid in overlay_ids]
    if order.kind in NUMERIC_KINDS:
        keys = np.concatenate([base_keys.astype(np.float64), np.asarray(over_keys, dtype=np.float64)])
        missing = np.isnan(keys)
    else:
        values = list(base_keys) + over_keys
        missing = np.fromiter((v is None for v in values), bool, len(values))
        uniques = sorted({v for v in values if v is not None})
        rank = {v: i for i, v in enumerate(uniques)}
        keys = np.fromiter((rank.get(v, 0) if v is not None else 0 for v in values), np.float64, len(values))
    if desc:
        keys = -keys
    return ids[np.lexsort((ids, keys, missing))]


def run_query(company: Company, text: str) -> dict[str, Any]:
    """The ``QueryResponse`` object for one query."""
    query, spec, filters, order = plan(text)
    table = company.table(spec.name)
    start = query.start_position - 1
    with company.lock:
        if not filters and (order is None or (order.path == "Id" and not query.descending)):
            if query.count:
                return {"totalCount": table.live_count()}
            page_ids = table.live_ids_page(start, query.max_results)
        else:
            base_ids, overlay_ids = _matching_ids(table, filters)
            if query.count:
                return {"totalCount": len(base_ids) + len(overlay_ids)}
            ids = _ordered(table, base_ids, overlay_ids, order, query.descending)
            page_ids = [int(i) for i in ids[start : start + query.max_results]]
        objects = [table.get(i) for i in page_ids]
    if not objects:
        return {}
    return {spec.name: objects, "startPosition": query.start_position, "maxResults": len(objects)}

"""An immutable builder for QBO's query language that no caller-supplied value can restructure.

Entities come from the registry, fields from ``EntitySpec.query_fields``, operators from a fixed
set, and every value is rendered by type: strings single-quoted with backslash escapes (``'O\\'Brien'``),
dates quoted ISO, datetimes quoted ISO with their offset, booleans bare ``true``/``false``, numbers
bare. Anything else is refused with :class:`QueryError` before a request is made.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from smartsync_pipeline.entities import EntitySpec, UnknownEntityError, entity, find_entity
from smartsync_pipeline.qbo.errors import QueryError

MAX_PAGE = 1000
MAX_IN_VALUES = 1000
OPERATORS = frozenset({"=", "<", ">", "<=", ">=", "IN", "LIKE"})
_FIELD_SHAPE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Scalar = str | int | float | Decimal | bool | date | datetime


def entity_spec(name: str) -> EntitySpec:
    """The registry spec for ``name``; an unknown entity is a ``QueryError`` (raised before any request)."""
    try:
        return entity(name)
    except UnknownEntityError as exc:
        raise QueryError(str(exc)) from None


def canonical_field(spec: EntitySpec, name: str) -> str:
    """The registry spelling of ``name`` (case-insensitive; ``Metadata.`` accepted for ``MetaData.``)."""
    if not isinstance(name, str) or not _FIELD_SHAPE.match(name):
        raise QueryError(f"invalid field name {name!r}")
    lowered = name.lower()
    for known in spec.query_fields:
        if known.lower() == lowered:
            return known
    allowed = ", ".join(sorted(spec.query_fields))
    raise QueryError(f"{spec.name} cannot be queried on {name!r}; allowed fields: {allowed}")


def render_value(value: Any) -> str:
    """One value as a QBO query literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QueryError(f"cannot query with the number {value!r}")
        return format(Decimal(repr(value)), "f")  # QBO has no exponent notation
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise QueryError(f"cannot query with the number {value!r}")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise QueryError("datetimes in queries need a time zone (QBO compares instants)")
        return f"'{value.replace(microsecond=0).isoformat()}'"
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise QueryError("query strings may not contain control characters")
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise QueryError(f"cannot query with a value of type {type(value).__name__}")


@dataclass(frozen=True)
class Condition:
    """``field op value`` with the value already rendered as a literal."""

    field: str
    op: str
    literal: str

    def to_sql(self) -> str:
        return f"{self.field} {self.op} {self.literal}"


@dataclass(frozen=True)
class Query:
    """A QBO query. Every method returns a new ``Query``; ``to_sql()`` renders it."""

    entity: str
    is_count: bool = False
    conditions: tuple[Condition, ...] = ()
    ordering: tuple[str, bool] | None = None  # (field, descending)
    start: int | None = None
    limit: int | None = None
    inactive_included: bool = False

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def select(cls, entity_name: str) -> Query:
        """``SELECT * FROM <entity>``."""
        return cls(entity_spec(entity_name).name)

    @classmethod
    def count(cls, entity_name: str) -> Query:
        """``SELECT COUNT(*) FROM <entity>``."""
        return cls(entity_spec(entity_name).name, is_count=True)

    @property
    def spec(self) -> EntitySpec:
        return entity_spec(self.entity)

    def where(self, field: str, op: str, value: Any) -> Query:
        """Add ``AND field op value``. ``op`` is one of ``= < > <= >= IN LIKE`` (``IN`` takes a list)."""
        spec = self.spec
        name = canonical_field(spec, field)
        if not isinstance(op, str) or op.strip().upper() not in OPERATORS:
            raise QueryError(f"operator {op!r} is not allowed; use one of {', '.join(sorted(OPERATORS))}")
        op = op.strip().upper()
        if op == "IN":
            return self.where_in(name, value)
        if op == "LIKE" and not isinstance(value, str):
            raise QueryError("LIKE needs a string pattern (use % as the wildcard)")
        if isinstance(value, list | tuple | set | frozenset):
            raise QueryError(f"operator {op} takes one value, not a collection (use IN)")
        if name == "Active" and self.inactive_included:
            raise QueryError("include_inactive() already filters on Active")
        return replace(self, conditions=(*self.conditions, Condition(name, op, render_value(value))))

    def where_in(self, field: str, values: Iterable[Any]) -> Query:
        """Add ``AND field IN (v1, v2, ...)``."""
        name = canonical_field(self.spec, field)
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise QueryError("IN needs a list of values")
        items = list(values)
        if not items:
            raise QueryError("IN needs at least one value")
        if len(items) > MAX_IN_VALUES:
            raise QueryError(f"IN takes at most {MAX_IN_VALUES} values; split the query")
        if name == "Active" and self.inactive_included:
            raise QueryError("include_inactive() already filters on Active")
        literal = "(" + ", ".join(render_value(v) for v in items) + ")"
        return replace(self, conditions=(*self.conditions, Condition(name, "IN", literal)))

    def include_inactive(self) -> Query:
        """For name lists, also return inactive rows (``Active IN (true, false)``); QBO hides them
        otherwise. Transaction entities have no Active flag, so this is refused for them."""
        spec = self.spec
        if not spec.name_list:
            raise QueryError(f"{spec.name} is not a name list; it has no inactive rows to include")
        if any(c.field == "Active" for c in self.conditions):
            raise QueryError("the query already filters on Active")
        return replace(self, inactive_included=True)

    def order_by(self, field: str, desc: bool = False) -> Query:
        if self.is_count:
            raise QueryError("COUNT(*) queries cannot be ordered")
        return replace(self, ordering=(canonical_field(self.spec, field), bool(desc)))

    def start_position(self, n: int) -> Query:
        """1-based index of the first row to return."""
        if self.is_count:
            raise QueryError("COUNT(*) queries cannot be paged")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise QueryError(f"STARTPOSITION must be an integer >= 1, not {n!r}")
        return replace(self, start=n)

    def max_results(self, n: int) -> Query:
        if self.is_count:
            raise QueryError("COUNT(*) queries cannot be paged")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PAGE:
            raise QueryError(f"MAXRESULTS must be an integer from 1 to {MAX_PAGE}, not {n!r}")
        return replace(self, limit=n)

    # -- rendering ------------------------------------------------------------------------------
    def to_sql(self) -> str:
        parts = [f"SELECT {'COUNT(*)' if self.is_count else '*'} FROM {self.entity}"]
        conditions = [c.to_sql() for c in self.conditions]
        if self.inactive_included:
            conditions.append("Active IN (true, false)")
        if conditions:
            parts.append("WHERE " + " AND ".join(conditions))
        if self.ordering:
            parts.append(f"ORDERBY {self.ordering[0]} {'DESC' if self.ordering[1] else 'ASC'}")
        if self.start is not None:
            parts.append(f"STARTPOSITION {self.start}")
        if self.limit is not None:
            parts.append(f"MAXRESULTS {self.limit}")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.to_sql()


_FROM = re.compile(r"\bFROM\s+([A-Za-z]+)", re.IGNORECASE)


def entity_of(sql: str) -> str:
    """The entity a raw query string selects from (registry spelling when known)."""
    found = _FROM.search(sql)
    if not found:
        raise QueryError("the query has no FROM <Entity>")
    spec = find_entity(found.group(1))
    return spec.name if spec else found.group(1)


__all__ = [
    "MAX_PAGE",
    "OPERATORS",
    "Condition",
    "Query",
    "canonical_field",
    "entity_of",
    "entity_spec",
    "render_value",
]

"""Which fields a query may use and how their values compare.

Every queryable field resolves to a dotted path in the object and a *kind*; values of every kind are
turned into one comparable form (floats with NaN for "missing", or case-folded strings with None),
both for the compact base columns and for written objects, so a filter means the same thing for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from smartsync_pipeline.entities.registry import BOOL, DATE, INT, MONEY, EntitySpec
from smartsync_pipeline.sandbox.qbo_time import TimeFormatError, parse_day, parse_time

NUMERIC_KINDS = frozenset({"id", "num", "date", "time", "bool"})


@dataclass(frozen=True)
class FieldRef:
    """A resolved query field: the name the query used, the path read from objects, its kind."""

    name: str
    path: str
    kind: str  # id | num | date | time | bool | str


class UnknownFieldError(ValueError):
    """The query names a field this entity does not have (or that cannot be queried)."""


def _kind_of_column(column_type: str) -> str:
    if column_type in (MONEY, INT):
        return "num"
    if column_type == DATE:
        return "date"
    if column_type == BOOL:
        return "bool"
    return "str"


def queryable_fields(spec: EntitySpec) -> dict[str, FieldRef]:
    """Case-folded field name → FieldRef, for every field a query on ``spec`` may filter or sort on."""
    fields: dict[str, FieldRef] = {}

    def add(name: str, path: str, kind: str) -> None:
        fields.setdefault(name.casefold(), FieldRef(name, path, kind))

    add("Id", "Id", "id")
    for nested in ("CreateTime", "LastUpdatedTime"):
        add(f"MetaData.{nested}", f"MetaData.{nested}", "time")
        add(f"Metadata.{nested}", f"MetaData.{nested}", "time")
    if spec.name_list:
        add("Active", "Active", "bool")
    for column in spec.columns:
        kind = _kind_of_column(column.type)
        top = column.path.split(".")[0]
        add(column.path, column.path, kind)
        add(top, column.path, kind)  # "VendorRef" compares VendorRef.value
    for extra in spec.extra_query_fields:
        add(extra, extra, "str")
    return fields


def resolve_field(spec: EntitySpec, name: str) -> FieldRef:
    field = queryable_fields(spec).get(name.casefold())
    if field is None:
        raise UnknownFieldError(f"property '{name}' is not queryable on {spec.name}")
    return field


def read_path(obj: dict[str, Any], path: str) -> Any:
    """The value at a dotted path, or None when any step is missing."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def comparable(kind: str, raw: Any) -> float | str | None:
    """A stored value in comparable form (NaN / None when missing or unreadable)."""
    if kind == "str":
        if raw is None or isinstance(raw, dict | list):
            return None
        if isinstance(raw, bool):
            return "true" if raw else "false"
        return str(raw).casefold()
    if raw is None:
        return math.nan
    try:
        if kind == "bool":
            if isinstance(raw, str):
                return 1.0 if raw.casefold() == "true" else 0.0
            return 1.0 if raw else 0.0
        if kind == "date":
            return float(parse_day(str(raw)))
        if kind == "time":
            return parse_time(str(raw))
        return float(raw)
    except (TypeError, ValueError, TimeFormatError):
        return math.nan


class LiteralError(ValueError):
    """A query literal that does not fit the field it is compared with."""


def literal_for(field: FieldRef, value: Any) -> float | str:
    """A query literal coerced to the comparable form of ``field``."""
    if field.kind == "str":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).casefold()
    if field.kind == "bool":
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, str) and value.casefold() in ("true", "false"):
            return 1.0 if value.casefold() == "true" else 0.0
        raise LiteralError(f"{field.name} needs true or false, got {value!r}")
    if field.kind == "date":
        try:
            return float(parse_day(str(value)))
        except TimeFormatError as exc:
            raise LiteralError(f"{field.name}: {exc}") from None
    if field.kind == "time":
        try:
            return parse_time(str(value))
        except TimeFormatError as exc:
            raise LiteralError(f"{field.name}: {exc}") from None
    if isinstance(value, bool):
        raise LiteralError(f"{field.name} needs a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LiteralError(f"{field.name} needs a number, got {value!r}") from None

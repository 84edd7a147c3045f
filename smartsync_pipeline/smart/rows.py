"""Rows out of DuckDB for the read path: a pandas DataFrame whose money is exact.

DuckDB's ``.df()`` turns ``DECIMAL(18,2)`` into float64, so a balance of 0.10 arrives as the nearest
binary fraction and sums drift. Here a query's result leaves DuckDB as Arrow, and every DECIMAL column
stays Arrow ``decimal128`` inside pandas (``pd.ArrowDtype``): each value reads back as a
``decimal.Decimal``, ``sum()`` and group sums are exact decimal arithmetic done by Arrow, and no value
passes through a float or a Python object on the way. Every other column gets the dtype ``.df()``
gives it (dates as ``datetime64``, nullable integers and booleans as pandas' nullable types), so a
caller sees the frame it always saw, with exact money. See ARCHITECTURE.md, "Exact money".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = ["fetch_frame", "frame", "is_money"]


def fetch_frame(cursor: Any, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Run ``sql`` with ``params`` on a DuckDB connection or cursor; the rows as an exact-money frame.

    ``sql()`` rather than ``execute()``: DuckDB hands a relation's result to Arrow without the extra
    copy a DB-API result makes."""
    return frame(cursor.sql(sql, params=list(params)).to_arrow_table())


def is_money(arrow_type: pa.DataType) -> bool:
    """DECIMAL columns are money in the mirror (``DECIMAL(18,2)``, sums of it ``DECIMAL(38,2)``)."""
    return pa.types.is_decimal(arrow_type)


def _money_dtype(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    return pd.ArrowDtype(arrow_type) if is_money(arrow_type) else None


_NULLABLE_INTS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
}


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table from DuckDB as a DataFrame: DECIMAL as exact ``ArrowDtype`` decimals, the rest as
    DuckDB's ``.df()`` would type it."""
    df = table.to_pandas(types_mapper=_money_dtype, date_as_object=False, coerce_temporal_nanoseconds=False)
    for i, field in enumerate(table.schema):
        column = table.column(i)
        if pa.types.is_date(field.type):
            df.isetitem(i, df.iloc[:, i].astype("datetime64[us]"))
        elif column.null_count and field.type in _NULLABLE_INTS:
            df.isetitem(i, column.to_pandas(types_mapper={field.type: _NULLABLE_INTS[field.type]}.get))
        elif column.null_count and pa.types.is_boolean(field.type):
            df.isetitem(i, column.to_pandas(types_mapper={field.type: pd.BooleanDtype()}.get))
        elif column.null_count == len(column) and _is_text(field.type):
            df.isetitem(i, pd.Series([None] * len(column), index=df.index, dtype=object))  # as .df(): no text at all
    return df

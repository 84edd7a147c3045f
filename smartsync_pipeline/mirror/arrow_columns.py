"""Arrow columns built from Python values without ``pa.array``.

``pa.array`` (and so ``pa.table`` and ``Table.from_pydict``) asks, for every Python list it converts,
whether the list is a pandas object, and the first time it asks it imports pandas: ~0.45 s of one
core, holding the GIL, in the middle of a backfill's first page (a sync never uses pandas). Casting
a column imports ``pyarrow.compute`` the same way. The builders here make the same arrays from
buffers (fixed-width values) or with pyarrow's string builder, and never reach either import;
``smartsync_pipeline_tests/mirror/test_arrow_columns.py`` checks both the arrays and the imports.
Staging a page uses the non-null ones; a report run's cells (``mirror/reports.py``) the nullable
dates, 32-bit integers, exact decimals and lists of strings.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import Context, Decimal, Inexact, InvalidOperation
from itertools import accumulate
from typing import Any

import pyarrow as pa

_INT32_MAX = 2**31 - 1
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])  # far past DECIMAL(38)'s digits


def int64s(values: Iterable[int]) -> pa.Array:
    """A non-null int64 column."""
    data = array("q", values)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def bools(values: Sequence[bool]) -> pa.Array:
    """A non-null boolean column."""
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, _bits(values)])


def _bits(flags: Sequence[object]) -> pa.Buffer:
    """Truthy ``flags`` as bits packed least significant first, as Arrow wants them."""
    packed = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            packed[i >> 3] |= 1 << (i & 7)
    return pa.py_buffer(packed)


def strings(values: Iterable[str | None]) -> pa.Array:
    """A string column; None is null."""
    builder = pa.lib.StringBuilder()
    builder.append_values(values)
    return builder.finish()


def int32s(values: Sequence[int | None]) -> pa.Array:
    """An int32 column; None is null (a value past 32 bits raises OverflowError)."""
    return _int32_column(pa.int32(), values, lambda v: v)


def dates(values: Sequence[date | None]) -> pa.Array:
    """A date32 column (days since 1970-01-01); None is null."""
    return _int32_column(pa.date32(), values, lambda d: d.toordinal() - _EPOCH_ORDINAL)


def _int32_column(kind: pa.DataType, values: Sequence[Any], as_int: Callable[[Any], int]) -> pa.Array:
    """A column of a 32-bit type from ``as_int`` of each value; None is null."""
    data = array("i", (0 if v is None else as_int(v) for v in values))
    return pa.Array.from_buffers(kind, len(values), [_validity(values), pa.py_buffer(data)])


def decimals(values: Sequence[Decimal | None], precision: int, scale: int) -> pa.Array:
    """A decimal128(precision, scale) column of exact values; None is null. A value with more
    decimal places than ``scale`` or more digits than ``precision`` is refused, never rounded."""
    data = bytearray(16 * len(values))
    for i, value in enumerate(values):
        if value is not None:
            data[16 * i : 16 * i + 16] = _unscaled(value, precision, scale).to_bytes(16, "little", signed=True)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(values), [_validity(values), pa.py_buffer(data)])


def _unscaled(value: Decimal, precision: int, scale: int) -> int:
    """``value`` x 10**scale as an integer, quantized in a context where rounding raises (the
    project's exact-money idiom, as in ``api/money.py``; not imported from there: it loads pandas)."""
    try:
        if value.is_finite():
            unscaled = int(value.quantize(Decimal(1).scaleb(-scale), context=_EXACT).scaleb(scale, context=_EXACT))
            if abs(unscaled) < 10**precision:
                return unscaled
    except (Inexact, InvalidOperation):
        pass
    raise ValueError(f"{value!r} is not exact in DECIMAL({precision},{scale})")


def string_lists(values: Sequence[Sequence[str] | None]) -> pa.Array:
    """A list<string> column; None is a null list."""
    offsets = array("i", accumulate((0 if v is None else len(v) for v in values), initial=0))
    items = strings(item for v in values if v is not None for item in v)
    return pa.Array.from_buffers(
        pa.list_(pa.string()), len(values), [_validity(values), pa.py_buffer(offsets)], children=[items]
    )


def _validity(values: Sequence[object]) -> pa.Buffer | None:
    """The validity bitmap of ``values`` (a set bit: not None); None when nothing is null."""
    if all(v is not None for v in values):
        return None
    return _bits([v is not None for v in values])


def joined_strings(texts: Sequence[bytes], joined: bytes) -> pa.Array:
    """A string column of UTF-8 ``texts`` given with their concatenation (one buffer and its offsets,
    no Python string per value). The caller vouches that every text is valid UTF-8."""
    if len(joined) > _INT32_MAX:  # a string column's offsets are 32-bit; a page is a few MB
        raise ValueError(f"{len(joined):,} bytes of text do not fit one Arrow string column (2 GiB at most)")
    offsets = array("i", accumulate(map(len, texts), initial=0))
    return pa.Array.from_buffers(pa.string(), len(texts), [None, pa.py_buffer(offsets), pa.py_buffer(joined)])

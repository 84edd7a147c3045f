"""Arrow columns built from Python values without ``pa.array``.

``pa.array`` (and so ``pa.table`` and ``Table.from_pydict``) asks, for every Python list it converts,
whether the list is a pandas object, and the first time it asks it imports pandas: ~0.45 s of one
core, holding the GIL, in the middle of a backfill's first page (a sync never uses pandas). Casting
a column imports ``pyarrow.compute`` the same way. The builders here make the same arrays from
buffers (fixed-width values) or with pyarrow's string builder, and never reach either import;
``smartsync_pipeline_tests/mirror/test_arrow_columns.py`` checks both the arrays and the imports.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate

import pyarrow as pa

_INT32_MAX = 2**31 - 1


def int64s(values: Iterable[int]) -> pa.Array:
    """A non-null int64 column."""
    data = array("q", values)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def bools(values: Sequence[bool]) -> pa.Array:
    """A non-null boolean column (bits packed least significant first, as Arrow wants them)."""
    packed = bytearray((len(values) + 7) // 8)
    for i, value in enumerate(values):
        if value:
            packed[i >> 3] |= 1 << (i & 7)
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(packed)])


def strings(values: Iterable[str | None]) -> pa.Array:
    """A string column; None is null."""
    builder = pa.lib.StringBuilder()
    builder.append_values(values)
    return builder.finish()


def joined_strings(texts: Sequence[bytes], joined: bytes) -> pa.Array:
    """A string column of UTF-8 ``texts`` given with their concatenation (one buffer and its offsets,
    no Python string per value). The caller vouches that every text is valid UTF-8."""
    if len(joined) > _INT32_MAX:  # a string column's offsets are 32-bit; a page is a few MB
        raise ValueError(f"{len(joined):,} bytes of text do not fit one Arrow string column (2 GiB at most)")
    offsets = array("i", accumulate(map(len, texts), initial=0))
    return pa.Array.from_buffers(pa.string(), len(texts), [None, pa.py_buffer(offsets), pa.py_buffer(joined)])

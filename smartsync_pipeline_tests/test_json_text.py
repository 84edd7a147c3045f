"""json_text must spell every object exactly as the standard library did: the mirror's raw column and
the change log's hashes depend on it, so a different spelling would look like an edit."""

from __future__ import annotations

import json
import math
import re
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from smartsync_pipeline.json_text import _has_long_integer, _may_differ, canonical_json, canonical_texts, decode
from smartsync_pipeline.sandbox.company import build_company


def stdlib(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_canonical_json_is_the_standard_librarys_text(value: object) -> None:
    assert canonical_json(value) == stdlib(value)
    assert decode(canonical_json(value).encode()) == json.loads(stdlib(value))


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values, max_size=6))
def test_a_batch_is_checked_once_and_spelled_like_each_object(values: list[object]) -> None:
    texts, joined = canonical_texts(values)
    assert texts == [stdlib(v).encode() for v in values]
    assert joined == b"".join(texts)


def test_one_odd_object_in_a_batch_takes_the_standard_path_alone() -> None:
    page = [{"Id": str(i), "Amount": 12.5} for i in range(50)]
    page[17] = {"Id": "17", "Rate": 1.234e-05, "Note": None}
    page[30] = {"Id": "30", "Odd": [float("inf")]}
    texts, joined = canonical_texts(page)
    assert texts == [stdlib(v).encode() for v in page]
    assert b'"Rate":1.234e-05' in texts[17] and b"Infinity" in texts[30]
    assert joined == b"".join(texts)


def test_floats_orjson_spells_differently_take_the_standard_path() -> None:
    cases = [1.234e-05, 1e-09, -7.1850441006303285e-09, 0.00001, 5e-324, 1e16, 1e22, 0.0001, -0.0, 123.45]
    bits = [struct.unpack("<d", struct.pack("<Q", (i * 0x9E3779B97F4A7C15) % 2**64))[0] for i in range(1, 5000)]
    for value in [*cases, *(b for b in bits if math.isfinite(b))]:
        assert canonical_json({"Amount": value}) == stdlib({"Amount": value}), value


def test_values_orjson_cannot_write_keep_their_old_text() -> None:
    for value in ({"big": 2**70}, {"nan": float("nan")}, {"inf": [float("inf")]}, {1: "int key"}):
        assert canonical_json(value) == stdlib(value)
    assert decode(b'{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert math.isnan(decode(b"[NaN]")[0])


def test_every_seeded_sandbox_object_keeps_its_text() -> None:
    company = build_company(seed=7, scale="small")
    checked = 0
    for table in company.tables.values():
        for i in range(table.n):
            obj = table.render(i)
            assert canonical_json(obj) == stdlib(obj)
            checked += 1
    assert checked > 1000


# The byte scans replaced these expressions (3 s of a medium backfill's 7 s of page work): same answers.
MAY_DIFFER = re.compile(rb"0\.0000|\de-")
LONG_INTEGER = re.compile(rb"\d{19}")
scan_text = st.binary(max_size=60) | st.text(alphabet='0123456789e-. x"', max_size=60).map(str.encode)


@settings(max_examples=1500, deadline=None)
@given(scan_text, st.integers(min_value=0, max_value=25))
def test_the_byte_scans_answer_like_the_regular_expressions(text: bytes, digits: int) -> None:
    for sample in (text, text + b"7" * digits + text, b"e-" + text, text + b"1e-9"):
        assert _may_differ(sample) == bool(MAY_DIFFER.search(sample)), sample
        assert _has_long_integer(sample) == bool(LONG_INTEGER.search(sample)), sample

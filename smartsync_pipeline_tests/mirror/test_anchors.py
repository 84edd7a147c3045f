"""The anchor's rule (which chain heads are acceptable) on hand-made anchor histories, and the file
itself: appended, 0600, a torn last line ignored."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.anchors import AnchorLine, AnchorMismatch, AnchorStore, check_head, spans
from smartsync_pipeline.mirror.change_log import GENESIS_HASH, ChainHead

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def h(n: int, tag: str = "") -> ChainHead:
    return ChainHead(n, (f"{n}{tag}" * 64)[:64]) if n else ChainHead(0, GENESIS_HASH)


def line(op: str, a: int, b: int, minute: int, tag: str = "") -> AnchorLine:
    return AnchorLine(op, "r1", h(a), h(b, tag), T0 + timedelta(minutes=minute), f"s{minute}")


def commit(a: int, b: int, minute: int) -> list[AnchorLine]:
    return [line("intent", a, b, minute), line("done", a, b, minute)]


CHAIN = {n: h(n).row_hash for n in range(1, 40)}  # the rows of an untouched chain


def hash_at(n: int) -> str | None:
    return CHAIN.get(n)


HISTORY = commit(0, 10, 1) + commit(10, 25, 2)


@pytest.mark.parametrize(
    ("head", "lines", "ok", "words"),
    [
        (h(0), [], True, "nothing anchored"),
        (h(25), HISTORY, True, "matches"),
        # A crash after the commit, before the done line: either head is fine.
        (h(25), [*HISTORY, line("intent", 25, 31, 3)], True, "matches"),
        (h(31), [*HISTORY, line("intent", 25, 31, 3)], True, "matches"),
        # Two such crashes in a row are followed in order.
        (h(36), [*HISTORY, line("intent", 25, 31, 3), line("intent", 31, 36, 4)], True, "matches"),
        # An attempt that rolled back, then the next commit reused its change ids.
        (h(33), [*HISTORY, line("intent", 25, 31, 3, "x"), *commit(25, 33, 4)], True, "matches"),
        # The first commit ever crashed after its intent.
        (h(0), [line("intent", 0, 10, 1)], True, "matches"),
        (h(20), HISTORY, False, "changes 21..25 are missing"),
        (h(0), HISTORY, False, "changes 1..25 are missing"),
        (h(25, "forged"), HISTORY, False, "change 25 was rewritten"),
        (h(30), HISTORY, False, "changes 26..30 were added after the anchored"),
        (h(31, "x"), [*HISTORY, line("intent", 25, 31, 3)], False, "were added after"),
    ],
)
def test_check_head(head: ChainHead, lines: list[AnchorLine], ok: bool, words: str) -> None:
    def reader(n: int) -> str | None:
        return head.row_hash if n == head.change_id else hash_at(n)

    result = check_head(head, reader, lines)
    assert result.ok is ok, result.reason
    assert words in result.reason


def test_file_is_private_append_only_and_survives_a_torn_line(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    store = AnchorStore(home, "r1")
    for item in HISTORY:
        store.append(item)
    path = store.path
    assert path == home.realm("r1").root / "anchors.jsonl"  # in the company's own shard
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(stat.S_IMODE(d.stat().st_mode) == 0o700 for d in (store.dir, home.realms_dir, home.root))
    with open(path, "ab") as f:
        f.write(b'{"op":"done","realm_id":"r1","from_id":25,"fr')  # a crash mid-append
    assert store.lines() == HISTORY
    assert store.check(h(25), hash_at).ok


def test_each_company_anchors_its_own_chain(tmp_path: Path) -> None:
    """Companies' chains are separate (ids restart at 1): another company's anchor lines neither
    satisfy nor contradict this one's, and a line of one company never lands in another's file."""
    home = Home(tmp_path)
    mine, other = AnchorStore(home, "r1"), AnchorStore(home, "r2")
    for item in HISTORY:
        mine.append(item)
    other.append(AnchorLine("done", "r2", h(0), h(90), T0, "s9"))
    assert mine.check(h(25), hash_at).ok and not mine.check(h(90), hash_at).ok
    assert not other.check(h(25), hash_at).ok and other.check(h(90), hash_at).ok
    with pytest.raises(ValueError, match="does not belong to company r2"):
        other.append(HISTORY[0])
    assert other.lines() == [AnchorLine("done", "r2", h(0), h(90), T0, "s9")]


def test_begin_refuses_and_says_what_to_do(tmp_path: Path) -> None:
    store = AnchorStore(Home(tmp_path), "r1")
    for item in HISTORY:
        store.append(item)
    with pytest.raises(AnchorMismatch) as caught:
        store.begin(h(20), hash_at)
    message = str(caught.value)
    assert message.startswith("company r1: refusing to extend the change log: the chain ends at change 20")
    assert "changes 21..25 are missing" in message and "audit verify" in message and "sync --full" in message


def test_spans() -> None:
    assert spans([9, 3, 4, 5, 11, 12]) == "3..5, 9, 11..12"
    assert spans([]) == ""

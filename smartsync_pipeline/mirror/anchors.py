"""The change log's anchor: its head written outside the chain, so a cut or rewritten tail shows.

The hash chain proves that no row was edited in place, but not that the newest rows are all still
there: delete the last N rows (or rewrite them and recompute their hashes) and what is left is a
perfectly valid, shorter chain. So every commit that appends changes also appends its new head to an
anchor file that is not in DuckDB (the SQL door cannot reach it): ``realms/<realm>/anchors.jsonl``,
in the company's own shard, 0600, append-only, fsynced. Two lines per commit: ``intent`` (from head
→ to head) before the transaction commits (or the full sync's shadow copy replaces the mirror),
``done`` after. The chain head must then be the latest ``done`` head, or the head of an ``intent``
written after it (a crash between commit and ``done``, or a rolled-back attempt). Anything else is a
truncated, rewritten or forged tail, and the sync engine refuses to extend it. See ARCHITECTURE.md
("The trail").

Every company has its own chain (its own mirror file), so each company's anchor file anchors that
chain alone: a check reads one file, whatever the size of the fleet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from smartsync_pipeline.durable_files import make_private_dirs
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.change_log import ChainHead

TAIL_BYTES = 256 * 1024  # the check needs the last lines only; files grow by ~0.5 KB per sync with changes


class AnchorMismatch(RuntimeError):
    """The change log's head is not the one its anchor recorded."""


@dataclass(frozen=True)
class AnchorLine:
    op: str  # "intent" or "done"
    realm_id: str
    from_head: ChainHead
    to_head: ChainHead
    at: datetime
    sync_id: str

    def as_json(self) -> str:
        return json.dumps(
            {
                "op": self.op,
                "realm_id": self.realm_id,
                "from_id": self.from_head.change_id,
                "from_hash": self.from_head.row_hash,
                "to_id": self.to_head.change_id,
                "to_hash": self.to_head.row_hash,
                "at": self.at.isoformat(),
                "sync_id": self.sync_id,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, text: str) -> AnchorLine:
        doc = json.loads(text)
        return cls(
            str(doc["op"]),
            str(doc["realm_id"]),
            ChainHead(int(doc["from_id"]), str(doc["from_hash"])),
            ChainHead(int(doc["to_id"]), str(doc["to_hash"])),
            datetime.fromisoformat(doc["at"]),
            str(doc.get("sync_id", "")),
        )

    def describe(self) -> str:
        return (
            f"change {self.to_head.change_id} (hash {self.to_head.row_hash[:16]}…), anchored by the sync of "
            f"company {self.realm_id} at {self.at:%Y-%m-%d %H:%M:%S} UTC"
        )


@dataclass(frozen=True)
class AnchorCheck:
    """The chain head against the anchor. ``anchored`` is the line it was checked against (None when
    nothing was ever anchored); ``missing`` the change-id range cut from the tail, if any."""

    ok: bool
    reason: str
    anchored: AnchorLine | None = None
    missing: tuple[int, int] | None = None


class AnchorStore:
    """The anchor file of one company's change log (``realms/<realm>/anchors.jsonl``)."""

    def __init__(self, home: Home, realm_id: str) -> None:
        self.realm_id = realm_id
        self.path = home.realm(realm_id).anchors_path
        self.dir = self.path.parent

    def append(self, line: AnchorLine) -> None:
        """One line, appended and fsynced (the folder too when the file is new)."""
        if line.realm_id != self.realm_id:
            raise ValueError(f"an anchor line of company {line.realm_id} does not belong to company {self.realm_id}")
        make_private_dirs(self.dir)
        path = self.path
        new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line.as_json() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def lines(self, *, whole: bool = False) -> list[AnchorLine]:
        """The company's lines (the tail only, unless ``whole``), oldest first. A torn last line (a
        crash mid-append) is skipped."""
        if not self.path.is_file():
            return []
        return sorted(_parse_lines(self.path, whole), key=lambda line: line.at)

    def check(self, head: ChainHead, row_hash_at: Callable[[int], str | None]) -> AnchorCheck:
        """Is ``head`` the head the anchor expects? ``row_hash_at(change_id)`` reads the chain."""
        return check_head(head, row_hash_at, self.lines())

    def check_published(self, head: ChainHead) -> list[str]:
        """A published snapshot may lag the mirror, but its head must be one a commit anchored."""
        lines = self.lines(whole=True)
        if not lines or head.change_id == 0:
            return []
        heads = [h for line in lines for h in (line.from_head, line.to_head)]
        if any(_same(head, h) for h in heads):
            return []
        newest = max(line.to_head.change_id for line in lines)
        if head.change_id > newest:
            return [f"changes {newest + 1}..{head.change_id} of the snapshot were never anchored by a sync"]
        return [
            f"the snapshot's head, change {head.change_id} (hash {head.row_hash[:16]}…), "
            "is not a head any sync anchored"
        ]

    def begin(self, head: ChainHead, row_hash_at: Callable[[int], str | None]) -> AnchoredCommit:
        """Check the head a sync is about to extend; raises ``AnchorMismatch`` naming the company and
        what to do when it is not the anchored one."""
        result = self.check(head, row_hash_at)
        if not result.ok:
            raise AnchorMismatch(
                f"company {self.realm_id}: refusing to extend the change log: {result.reason}. Nothing was written. "
                "The mirror was changed outside smartsync: run `smartsync audit verify` to see what differs, then "
                f"restore {self.dir / 'mirror.duckdb'} from a backup; to start a new trail instead, move it and "
                f"{self.path} aside and run `smartsync sync --full`"
            )
        return AnchoredCommit(self, self.realm_id, head)


@dataclass
class AnchoredCommit:
    """One commit's two anchor lines: ``intent`` just before it, ``done`` just after."""

    store: AnchorStore
    realm_id: str
    start: ChainHead
    _intent: AnchorLine | None = None

    def intent(self, head: ChainHead, sync_id: str) -> None:
        """Call right before the commit; nothing to anchor when no change was appended."""
        if head == self.start:
            return
        self._intent = AnchorLine("intent", self.realm_id, self.start, head, datetime.now(UTC), sync_id)
        self.store.append(self._intent)

    def done(self) -> None:
        """Call right after the commit."""
        if self._intent is not None:
            line = self._intent
            now = datetime.now(UTC)
            self.store.append(AnchorLine("done", line.realm_id, line.from_head, line.to_head, now, line.sync_id))
            self._intent = None


def _parse_lines(path: Path, whole: bool) -> Iterator[AnchorLine]:
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = 0 if whole else max(0, size - TAIL_BYTES)
        f.seek(start)
        data = f.read()
    chunks = data.split(b"\n")
    if start > 0:
        chunks = chunks[1:]  # the first one is the end of a line cut by the tail
    for chunk in chunks:
        if not chunk.strip():
            continue
        try:
            yield AnchorLine.parse(chunk.decode())
        except (ValueError, KeyError, TypeError):
            continue  # a torn line from a crash mid-append


def _same(a: ChainHead, b: ChainHead) -> bool:
    return a.change_id == b.change_id and a.row_hash == b.row_hash


def expected_heads(lines: list[AnchorLine]) -> tuple[AnchorLine | None, list[ChainHead]]:
    """The latest ``done`` line, and every head the chain may have now: that line's, or one reached
    from it by intents written after it (commits whose ``done`` was never written; attempts that
    rolled back). With no ``done`` yet, the heads start from the first intent's starting point."""
    done = [line for line in lines if line.op == "done"]
    latest = max(done, key=lambda line: (line.to_head.change_id, line.at)) if done else None
    intents = [line for line in lines if line.op == "intent" and (latest is None or line.at >= latest.at)]
    if latest is not None:
        heads = [latest.to_head]
    elif intents:
        heads = [intents[0].from_head]
    else:
        return None, []
    for line in intents:  # oldest first, so a chain of unconfirmed commits is followed in order
        if any(_same(line.from_head, h) for h in heads) and not any(_same(line.to_head, h) for h in heads):
            heads.append(line.to_head)
    return latest, heads


def check_head(head: ChainHead, row_hash_at: Callable[[int], str | None], lines: list[AnchorLine]) -> AnchorCheck:
    """See the module docstring."""
    latest, heads = expected_heads(lines)
    if not heads:
        return AnchorCheck(True, "nothing anchored yet")
    if any(_same(head, h) for h in heads):
        what = latest.describe() if latest else "the first anchored commit (not confirmed)"
        return AnchorCheck(True, f"head matches the anchor: {what}", latest)
    if latest is None:
        return AnchorCheck(
            False, f"the chain head, change {head.change_id}, is none of the heads anchored so far ({len(heads)})"
        )
    anchored = latest.to_head
    if head.change_id < anchored.change_id:
        missing = (head.change_id + 1, anchored.change_id)
        return AnchorCheck(
            False,
            f"the chain ends at change {head.change_id} but the anchor recorded {latest.describe()}: changes "
            f"{missing[0]}..{missing[1]} are missing (cut from the tail)",
            latest,
            missing,
        )
    actual = row_hash_at(anchored.change_id)
    if actual != anchored.row_hash:
        return AnchorCheck(
            False,
            f"change {anchored.change_id} was rewritten: its hash is {str(actual)[:16]}…, the anchor recorded "
            f"{latest.describe()}",
            latest,
        )
    return AnchorCheck(
        False,
        f"changes {anchored.change_id + 1}..{head.change_id} were added after the anchored "
        f"{latest.describe()} without an anchor (not written by a sync)",
        latest,
    )


def check_points(
    head: ChainHead, row_hash_at: Callable[[int], str | None], points: list[tuple[str, ChainHead]]
) -> list[str]:
    """Heads recorded elsewhere (Dagster's event log): each must still be in the chain, unchanged.
    One sentence per disagreement, naming the source."""
    problems = []
    for source, point in points:
        if point.change_id == 0:
            continue
        if point.change_id > head.change_id:
            problems.append(
                f"{source} recorded change {point.change_id} (hash {point.row_hash[:16]}…) but the chain ends at "
                f"change {head.change_id}: changes {head.change_id + 1}..{point.change_id} are missing"
            )
        elif (actual := row_hash_at(point.change_id)) != point.row_hash:
            problems.append(
                f"change {point.change_id} was rewritten: its hash is {str(actual)[:16]}…, {source} recorded "
                f"{point.row_hash[:16]}…"
            )
    return problems


def spans(ids: list[int]) -> str:
    """``[3, 4, 5, 9]`` → ``3..5, 9``."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)


__all__ = [
    "AnchorCheck",
    "AnchorLine",
    "AnchorMismatch",
    "AnchorStore",
    "AnchoredCommit",
    "check_head",
    "check_points",
    "spans",
]

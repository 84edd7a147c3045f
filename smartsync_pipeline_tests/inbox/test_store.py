"""The webhook inbox: dedupe, the seq cursor, atomic batches and several real processes at once."""

from __future__ import annotations

import ast
import json
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import smartsync_pipeline.inbox as inbox_package
from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox import AddResult, WebhookInbox
from smartsync_pipeline.qbo.webhooks import WebhookEvent

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def event(entity_id: int, *, entity: str = "Bill", op: str = "Update", minutes: int = 0, realm: str = "111"):
    return WebhookEvent(realm, entity, str(entity_id), op, T0 + timedelta(minutes=minutes), None)


@pytest.fixture
def inbox(tmp_path: Path):
    with WebhookInbox(tmp_path / "inbox.sqlite") as box:
        yield box


def test_empty_inbox(inbox: WebhookInbox) -> None:
    assert (inbox.count(), inbox.latest_seq(), inbox.read_after(0)) == (0, 0, [])
    assert inbox.add([]) == AddResult(0, 0)


def test_records_carry_the_event_fields_seq_and_received_at(inbox: WebhookInbox) -> None:
    before = datetime.now(UTC)
    cloud = WebhookEvent("222", "Invoice", "9", "Void", None, "ce-1")
    assert inbox.add([event(1), cloud]) == AddResult(stored=2, duplicates=0)
    first, second = inbox.read_after(0)
    assert (first.seq, first.realm_id, first.entity, first.entity_id, first.operation) == (
        1,
        "111",
        "Bill",
        "1",
        "Update",
    )
    assert first.last_updated == T0 and first.last_updated.utcoffset() == timedelta(0)
    assert first.event_id is None
    assert first.dedupe_key == event(1).dedupe_key
    assert first.event == event(1)
    assert (second.seq, second.event) == (2, cloud)
    assert before <= first.received_at <= datetime.now(UTC)
    assert inbox.latest_seq() == 2 and inbox.count() == 2


def test_redeliveries_are_counted_as_duplicates_and_stored_once(inbox: WebhookInbox) -> None:
    assert inbox.add([event(1), event(2)]) == AddResult(2, 0)
    assert inbox.add([event(2), event(1), event(3)]) == AddResult(1, 2)
    assert inbox.add([event(4), event(4)]) == AddResult(1, 1)  # twice in one delivery
    # the same classic change again, its time written with another offset: still the same change
    same_change = WebhookEvent("111", "Bill", "1", "Update", T0.astimezone(timezone(timedelta(hours=-8))), None)
    assert inbox.add([same_change]) == AddResult(0, 1)
    # CloudEvents are identified by their id: a redelivery is a duplicate, another id is another event
    assert inbox.add([WebhookEvent("111", "Bill", "1", "Update", T0, "ce-9")]) == AddResult(1, 0)
    assert inbox.add([WebhookEvent("111", "Bill", "1", "Update", None, "ce-9")]) == AddResult(0, 1)
    # a later change of the same bill is new
    assert inbox.add([event(1, minutes=1)]) == AddResult(1, 0)
    assert inbox.count() == 6
    assert [r.seq for r in inbox.read_after(0)] == [1, 2, 3, 4, 5, 6]  # duplicates use up no seq numbers


def test_read_after_pages_with_a_cursor(inbox: WebhookInbox) -> None:
    for start in range(0, 25, 5):
        inbox.add([event(i) for i in range(start, start + 5)])
    cursor, seen = 0, []
    while page := inbox.read_after(cursor, limit=10):
        assert len(page) <= 10
        assert [r.seq for r in page] == sorted(r.seq for r in page)
        assert page[0].seq > cursor
        seen += [r.entity_id for r in page]
        cursor = page[-1].seq
    assert seen == [str(i) for i in range(25)]
    assert cursor == inbox.latest_seq() == 25
    assert inbox.read_after(25) == []
    assert [r.entity_id for r in inbox.read_after(20)] == ["20", "21", "22", "23", "24"]
    with pytest.raises(ValueError, match="limit"):
        inbox.read_after(0, limit=0)


def test_a_batch_is_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "inbox.sqlite"
    with WebhookInbox(path) as box:
        box.add([event(1)])
        # A real storage fault in the middle of a batch: the database refuses entity 666.
        with sqlite3.connect(path) as raw:
            raw.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.entity_id = '666'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        with pytest.raises(sqlite3.IntegrityError):
            box.add([event(2), event(3), event(666), event(4)])
        assert [r.entity_id for r in box.read_after(0)] == ["1"]
        assert box.add([event(2)]) == AddResult(1, 0)  # the inbox is still usable


def test_durability_settings_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "inbox.sqlite"
    with WebhookInbox(path) as box:
        box.add([event(1)])
        assert box._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with WebhookInbox(path) as reopened:
        assert [r.event for r in reopened.read_after(0)] == [event(1)]


def test_default_path_is_the_homes_inbox(smartsync_home: Path) -> None:
    with WebhookInbox() as box:
        assert box.path == Home.from_env().inbox_path == smartsync_home.resolve() / "inbox.sqlite"
        box.add([event(1)])
    assert (smartsync_home / "inbox.sqlite").exists()
    assert not (smartsync_home / "mirror.duckdb").exists()


# ---- several processes ---------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import json, random, sys
    from datetime import UTC, datetime, timedelta
    from smartsync_pipeline.inbox import WebhookInbox
    from smartsync_pipeline.qbo.webhooks import WebhookEvent

    path, name, count, shared = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
    own = [WebhookEvent("111", "Bill", f"{name}{i}", "Update", t0, None) for i in range(count)]
    common = [WebhookEvent("111", "Invoice", str(i), "Create", t0, None) for i in range(shared)]
    events = own + common
    random.Random(name).shuffle(events)
    box = WebhookInbox(path)
    print("ready", flush=True)
    sys.stdin.readline()  # the start gate: every process begins together
    stored = duplicates = 0
    rng = random.Random(name)
    while events:
        size = rng.randint(1, 6)
        batch, events = events[:size], events[size:]
        result = box.add(batch)
        stored += result.stored
        duplicates += result.duplicates
    print(json.dumps({"stored": stored, "duplicates": duplicates}), flush=True)
    """
)

READER = textwrap.dedent(
    """
    import json, sys, time
    from smartsync_pipeline.inbox import WebhookInbox

    path, expected = sys.argv[1], int(sys.argv[2])
    box = WebhookInbox(path)
    print("ready", flush=True)
    sys.stdin.readline()
    cursor, keys, order_ok, deadline = 0, [], True, time.monotonic() + 60
    while len(keys) < expected and time.monotonic() < deadline:
        page = box.read_after(cursor, limit=37)
        seqs = [r.seq for r in page]
        if seqs and (seqs[0] <= cursor or seqs != sorted(set(seqs))):
            order_ok = False
        keys += [r.dedupe_key for r in page]
        if not seqs:
            time.sleep(0.005)  # poll interval while the writers catch up
        cursor = seqs[-1] if seqs else cursor
    print(json.dumps({"keys": keys, "order_ok": order_ok}), flush=True)
    """
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
    return proc


def test_two_writer_processes_and_a_reader_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "inbox.sqlite")
    count, shared = 300, 60
    WebhookInbox(path).close()
    writers = [spawn(WRITER, path, name, str(count), str(shared)) for name in ("a", "b")]
    unique = 2 * count + shared
    reader = spawn(READER, path, str(unique))
    procs = [*writers, reader]
    try:
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    writer_results, read = outputs[:2], outputs[2]
    assert sum(r["stored"] for r in writer_results) == unique
    assert sum(r["duplicates"] for r in writer_results) == shared  # every shared event once too many
    assert all(r["stored"] >= count for r in writer_results)

    with WebhookInbox(path) as box:
        records = box.read_after(0, limit=10_000)
        assert box.count() == len(records) == unique
        assert box.latest_seq() == records[-1].seq
    seqs = [r.seq for r in records]
    assert seqs == sorted(set(seqs))
    ids = {(r.entity, r.entity_id) for r in records}
    expected = {("Bill", f"{n}{i}") for n in "ab" for i in range(count)} | {("Invoice", str(i)) for i in range(shared)}
    assert ids == expected
    # the reader, polling by cursor while both wrote, saw every event exactly once and in seq order
    assert read["order_ok"] is True
    assert sorted(read["keys"]) == sorted(r.dedupe_key for r in records)
    assert len(read["keys"]) == len(set(read["keys"]))


# ---- layer rule ----------------------------------------------------------------------------------

ALLOWED = ("smartsync_pipeline.qbo.webhooks", "smartsync_pipeline.home", "smartsync_pipeline.inbox")


def test_inbox_imports_only_stdlib_home_webhooks_and_itself() -> None:
    outside = set()
    for module in Path(inbox_package.__file__).parent.glob("*.py"):
        tree = ast.parse(module.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        outside |= {
            f"{module.name}: {m}"
            for m in names
            if m.split(".")[0] not in sys.stdlib_module_names and m != "__future__" and not m.startswith(ALLOWED)
        }
    assert outside == set()


# ---- pruning handled events ------------------------------------------------------------------------


def test_prune_removes_only_handled_events_older_than_the_retention(inbox: WebhookInbox) -> None:
    inbox.add([event(i) for i in range(1, 6)])
    later = datetime.now(UTC) + timedelta(days=8)
    assert inbox.prune(7 * 86400, now=later) == 0  # nothing handled yet: nothing goes, however old
    inbox.mark_processed(3)
    inbox.mark_processed(2)  # the mark never moves backwards
    assert inbox.processed_seq() == 3
    assert inbox.prune(7 * 86400) == 0  # handled but received just now: kept for dedupe
    assert inbox.prune(7 * 86400, now=later) == 3
    assert [r.entity_id for r in inbox.read_after(0)] == ["4", "5"]
    assert inbox.add([event(6)]) == AddResult(1, 0)
    assert inbox.latest_seq() == 6  # numbering goes on: the sensor's cursor stays valid
    assert inbox.add([event(5)]) == AddResult(0, 1)  # unpruned events still dedupe


def test_a_version_1_inbox_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "inbox.sqlite"
    with WebhookInbox(path) as box:
        box.add([event(1)])
    with sqlite3.connect(path) as raw:  # what a file written before pruning existed looks like
        raw.execute("DROP TABLE progress")
        raw.execute("PRAGMA user_version=1")
    with WebhookInbox(path) as box:
        assert [r.entity_id for r in box.read_after(0)] == ["1"]
        box.mark_processed(1)
        assert box.prune(0, now=datetime.now(UTC) + timedelta(seconds=1)) == 1
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 2

"""The webhook receiver on the service's ASGI server (uvicorn, real HTTP on loopback): status codes,
storage before the answer, limits on body, concurrency and slow clients, pruning."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartsync_pipeline.api.webhook_receiver import WebhookReceiver
from smartsync_pipeline.inbox import WebhookInbox
from smartsync_pipeline.qbo.webhooks import sign_body

VERIFIER = "verifier-7c1d2e3f4a5b"


def classic(*ids: str, entity: str = "Bill", op: str = "Update", when: str = "2026-11-26T10:00:00.000Z") -> bytes:
    entities = [{"name": entity, "id": i, "operation": op, "lastUpdated": when} for i in ids]
    return json.dumps({"eventNotifications": [{"realmId": "111", "dataChangeEvent": {"entities": entities}}]}).encode()


def post(
    url: str,
    body: bytes,
    *,
    signature: str | None = "sign",
    headers: dict[str, str] | None = None,
    source: str | None = None,
) -> tuple[int, dict, dict]:
    """POST ``body`` to ``url``; returns (status, json body, headers). ``signature="sign"`` signs it."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=10, source_address=(source, 0) if source else None
    )
    sent = {"Content-Type": "application/json", **(headers or {})}
    if signature == "sign":
        sent["intuit-signature"] = sign_body(VERIFIER, body)
    elif signature is not None:
        sent["intuit-signature"] = signature
    try:
        conn.request("POST", parts.path or "/", body=body, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def raw_exchange(receiver: WebhookReceiver, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are and read one response: for requests http.client will not make."""
    parts = urlsplit(receiver.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[WebhookInbox]:
    with WebhookInbox(tmp_path / "inbox.sqlite") as box:
        yield box


@pytest.fixture
def receiver(inbox: WebhookInbox) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(inbox, VERIFIER) as running:
        yield running


def stored_ids(inbox: WebhookInbox) -> list[str]:
    # A separate connection: what any other process would see.
    with WebhookInbox(inbox.path) as other:
        return [r.entity_id for r in other.read_after(0, limit=10_000)]


def test_valid_delivery_is_stored_before_the_200(receiver: WebhookReceiver, inbox: WebhookInbox) -> None:
    status, answer, _ = post(receiver.webhook_url, classic("145", "146"))
    assert (status, answer) == (200, {"stored": 2, "duplicates": 0, "skipped": 0})
    assert stored_ids(inbox) == ["145", "146"]
    c = receiver.counters
    assert (c.accepted, c.events_stored, c.duplicates, c.rejected_signature, c.rejected_payload) == (
        1,
        2,
        0,
        0,
        0,
    )


def test_cloudevents_delivery(receiver: WebhookReceiver, inbox: WebhookInbox) -> None:
    events = [
        {
            "specversion": "1.0",
            "id": f"ce-{i}",
            "type": "qbo.invoice.created.v1",
            "intuitentityid": str(i),
            "intuitaccountid": "111",
            "time": "2026-11-26T10:00:00Z",
        }
        for i in (1, 2)
    ]
    status, answer, _ = post(receiver.webhook_url, json.dumps(events).encode())
    assert (status, answer["stored"]) == (200, 2)
    with WebhookInbox(inbox.path) as other:
        assert [(r.entity, r.entity_id, r.event_id) for r in other.read_after(0)] == [
            ("Invoice", "1", "ce-1"),
            ("Invoice", "2", "ce-2"),
        ]


def test_redelivery_is_a_duplicate_not_stored_twice(receiver: WebhookReceiver, inbox: WebhookInbox) -> None:
    body = classic("145")
    assert post(receiver.webhook_url, body)[1] == {"stored": 1, "duplicates": 0, "skipped": 0}
    assert post(receiver.webhook_url, body)[1] == {"stored": 0, "duplicates": 1, "skipped": 0}
    assert post(receiver.webhook_url, classic("145", "7"))[1] == {"stored": 1, "duplicates": 1, "skipped": 0}
    assert stored_ids(inbox) == ["145", "7"]
    assert receiver.counters.duplicates == 2


def test_unmirrored_entities_are_skipped_and_counted(receiver: WebhookReceiver, inbox: WebhookInbox) -> None:
    status, answer, _ = post(receiver.webhook_url, classic("5", entity="JournalCode"))
    assert (status, answer) == (200, {"stored": 0, "duplicates": 0, "skipped": 1})
    assert stored_ids(inbox) == []
    assert receiver.counters.skipped_entities == 1


@pytest.mark.parametrize(
    "signature",
    [None, "", "garbage", sign_body("another-verifier", classic("145")), sign_body(VERIFIER, classic("146"))],
    ids=["missing", "empty", "garbage", "other-verifier", "other-body"],
)
def test_bad_signature_is_401_and_nothing_stored(receiver: WebhookReceiver, inbox: WebhookInbox, signature) -> None:
    status, answer, _ = post(receiver.webhook_url, classic("145"), signature=signature)
    assert status == 401
    assert "signature" in answer["detail"]
    assert VERIFIER not in json.dumps(answer)
    assert stored_ids(inbox) == []
    assert receiver.counters.rejected_signature == 1
    assert receiver.counters.accepted == 0


def test_signature_is_checked_before_parsing(receiver: WebhookReceiver) -> None:
    status, _, _ = post(receiver.webhook_url, b"{not json", signature="garbage")
    assert status == 401
    assert receiver.counters.rejected_payload == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"{}", "not a QBO webhook"),
        (classic("145", op="Upsert"), "operation: expected one of"),
        (classic("abc"), "expected a string of digits"),
        (classic("1", when="yesterday"), "not an ISO-8601 timestamp"),
    ],
)
def test_malformed_signed_body_is_400_with_a_reason(
    receiver: WebhookReceiver, inbox: WebhookInbox, body: bytes, reason: str
) -> None:
    status, answer, _ = post(receiver.webhook_url, body)
    assert status == 400
    assert reason in answer["detail"]
    assert stored_ids(inbox) == []
    assert receiver.counters.rejected_payload == 1


def test_one_bad_event_rejects_the_whole_delivery(receiver: WebhookReceiver, inbox: WebhookInbox) -> None:
    document = json.loads(classic("1", "2"))
    document["eventNotifications"][0]["dataChangeEvent"]["entities"][1]["operation"] = "Nope"
    assert post(receiver.webhook_url, json.dumps(document).encode())[0] == 400
    assert stored_ids(inbox) == []  # nothing half-stored


def test_oversize_body_is_413_without_reading_it(inbox: WebhookInbox) -> None:
    with WebhookReceiver(inbox, VERIFIER, webhook_max_body_bytes=1000) as small:
        parts = urlsplit(small.url)
        # Declare 50 MB and send only the headers: an answer proves the body was never awaited.
        request = (
            f"POST /webhooks/qbo HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 50000000\r\n"
            "intuit-signature: x\r\n\r\n"
        ).encode()
        started = time.monotonic()
        status, body = raw_exchange(small, request)
        assert status == 413
        assert time.monotonic() - started < 5
        assert b"1000 bytes" in body
        # a client that asks before sending (Expect: 100-continue) gets 413 too, and no 100 Continue
        request = (
            f"POST /webhooks/qbo HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 50000000\r\n"
            "Expect: 100-continue\r\n\r\n"
        ).encode()
        assert raw_exchange(small, request)[0] == 413
        # an absurd length is refused by the HTTP parser itself (400), the body never read either
        request = (
            f"POST /webhooks/qbo HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {'9' * 5000}\r\n\r\n"
        ).encode()
        assert raw_exchange(small, request)[0] == 400
        # exactly at the limit is fine
        fits = classic("1")
        fits = fits + b" " * (1000 - len(fits))
        assert post(small.webhook_url, fits)[0] == 200
        assert post(small.webhook_url, fits + b" ")[0] == 413
        assert small.counters.rejected_size == 3


def test_missing_or_chunked_length_is_411(receiver: WebhookReceiver, inbox: WebhookInbox) -> None:
    netloc = urlsplit(receiver.url).netloc
    body = classic("1")
    head = f"POST /webhooks/qbo HTTP/1.1\r\nHost: {netloc}\r\nintuit-signature: {sign_body(VERIFIER, body)}\r\n"
    status, _ = raw_exchange(receiver, (head + "Connection: close\r\n\r\n").encode() + body)
    assert status == 411
    chunked = (
        (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    )
    status, _ = raw_exchange(receiver, chunked)
    assert status == 411
    status, _ = raw_exchange(receiver, (head + "Content-Length: 12abc\r\n\r\n").encode())
    assert status == 400
    assert stored_ids(inbox) == []


def _in_flight(receiver: WebhookReceiver) -> int:
    return receiver.app.state.webhooks.in_flight


def _open_partial_delivery(receiver: WebhookReceiver, body: bytes) -> socket.socket:
    """Headers and half the body of a signed delivery; the rest is never sent."""
    parts = urlsplit(receiver.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = (
        f"POST /webhooks/qbo HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\n"
        f"intuit-signature: {sign_body(VERIFIER, body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[: len(body) // 2])
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (None if it is still open after ``seconds``)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_concurrent_deliveries_are_bounded_not_rate_limited_per_address(inbox: WebhookInbox) -> None:
    # One slot: a delivery stuck mid-body holds it, the next one is told to retry (503), not queued.
    with WebhookReceiver(inbox, VERIFIER, webhook_max_concurrency=1, read_timeout_seconds=30) as one:
        stuck = _open_partial_delivery(one, classic("1"))
        try:
            deadline = time.monotonic() + 10
            while _in_flight(one) < 1 and time.monotonic() < deadline:
                time.sleep(0.01)  # polling for the server to take the delivery, bounded by the deadline
            assert _in_flight(one) == 1
            status, answer, headers = post(one.webhook_url, classic("2"))
            assert status == 503 and headers["retry-after"] == "1"
            assert "retry" in answer["detail"]
        finally:
            stuck.close()
        deadline = time.monotonic() + 10
        while _in_flight(one) and time.monotonic() < deadline:
            time.sleep(0.01)
        # Every delivery comes from 127.0.0.1 (as behind Intuit or a proxy): many in a row are all fine.
        assert [post(one.webhook_url, classic(str(i)))[0] for i in range(3, 23)] == [200] * 20
        assert one.counters.busy == 1
    assert sorted(stored_ids(inbox), key=int) == [str(i) for i in range(3, 23)]


def test_slow_clients_are_cut_off_at_the_read_deadline(inbox: WebhookInbox) -> None:
    with WebhookReceiver(inbox, VERIFIER, webhook_max_concurrency=1, read_timeout_seconds=1.0) as quick:
        parts = urlsplit(quick.url)
        # 1. connects and says nothing
        silent = socket.create_connection((parts.hostname, parts.port), timeout=10)
        # 2. trickles its headers in, a byte at a time (each byte would reset a plain idle timeout)
        trickle = socket.create_connection((parts.hostname, parts.port), timeout=10)
        # 3. sends headers and half the body, holding the only delivery slot
        stalled = _open_partial_delivery(quick, classic("1"))
        started = time.monotonic()
        for byte in b"POST /webhooks/qbo HTTP/1.1\r\nHost: x\r\n":
            try:
                trickle.send(bytes([byte]))
            except OSError:
                break  # the server closed it
            if time.monotonic() - started > 8:
                break
            time.sleep(0.1)  # the slow client's pace (what is tested is the server's deadline)
        for sock in (silent, trickle, stalled):
            closed_after = _closed_within(sock, 10)
            sock.close()
            assert closed_after is not None, "the server kept a too-slow connection open"
        assert time.monotonic() - started < 10
        # the slot the stalled delivery held is free again
        assert post(quick.webhook_url, classic("2"))[0] == 200
    assert stored_ids(inbox) == ["2"]


def test_handled_old_events_are_pruned_by_the_server(inbox: WebhookInbox) -> None:
    from smartsync_pipeline.qbo.webhooks import parse_webhook

    inbox.add(parse_webhook(classic("1", "2", "3")))
    inbox.mark_processed(2)  # the sensor handled 1 and 2; 3 is still waiting
    with WebhookReceiver(inbox, VERIFIER, inbox_retention_seconds=0, inbox_prune_interval_seconds=0.05) as pruning:
        deadline = time.monotonic() + 10
        while pruning.counters.pruned < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pruning.counters.pruned == 2
        assert post(pruning.webhook_url, classic("4"))[0] == 200
    assert stored_ids(inbox) == ["3", "4"]
    assert [r.seq for r in inbox.read_after(0)] == [3, 4]  # numbering goes on after a prune


def test_health_routes_and_methods(receiver: WebhookReceiver) -> None:
    parts = urlsplit(receiver.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())) == (200, {"status": "ok"})
        # keep-alive: the same connection carries a delivery after the health check
        body = classic("1")
        conn.request("POST", "/webhooks/qbo", body=body, headers={"intuit-signature": sign_body(VERIFIER, body)})
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())["stored"]) == (200, 1)
    finally:
        conn.close()
    for method, path, expected in [
        ("GET", "/nowhere", 404),
        ("POST", "/nowhere", 404),
        ("GET", "/webhooks/qbo", 405),
        ("PUT", "/webhooks/qbo", 405),
        ("DELETE", "/healthz", 405),
        ("BREW", "/webhooks/qbo", 405),
    ]:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        try:
            conn.request(method, path, body=b"x" if method in ("POST", "PUT") else None)
            response = conn.getresponse()
            response.read()
            assert (method, path, response.status) == (method, path, expected)
        finally:
            conn.close()


def test_disk_full_is_a_500_and_nothing_is_half_stored(
    receiver: WebhookReceiver, inbox: WebhookInbox, caplog: pytest.LogCaptureFixture
) -> None:
    assert post(receiver.webhook_url, classic("1"))[0] == 200
    pages = inbox._conn.execute("PRAGMA page_count").fetchone()[0]
    inbox._conn.execute(f"PRAGMA max_page_count={pages}")  # SQLite now reports "database or disk is full"
    big = classic(*[str(i) for i in range(100, 2100)])
    with caplog.at_level(logging.DEBUG, logger="smartsync"):
        status, answer, _ = post(receiver.webhook_url, big)
    assert (status, answer["status"]) == (500, 500)
    assert "not stored" in answer["detail"]
    assert receiver.counters.errors == 1
    assert stored_ids(inbox) == ["1"]
    assert any("could not store a delivery" in r.getMessage() for r in caplog.records)
    assert not any(VERIFIER in r.getMessage() or VERIFIER in (r.exc_text or "") for r in caplog.records)
    inbox._conn.execute("PRAGMA max_page_count=1073741823")
    assert post(receiver.webhook_url, big)[1]["stored"] == 2000  # Intuit's retry then succeeds


def test_no_secret_in_repr_or_logs(inbox: WebhookInbox, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="smartsync"):
        with WebhookReceiver(inbox, VERIFIER) as running:
            assert VERIFIER not in repr(running)
            post(running.webhook_url, classic("1"))
            post(running.webhook_url, classic("2"), signature="bad")
            post(running.webhook_url, b"[", signature="sign")
    assert caplog.records  # the receiver did log the requests
    assert not any(VERIFIER in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="verifier"):
        WebhookReceiver(inbox, "")


def test_p99_answer_time_is_well_within_three_seconds(receiver: WebhookReceiver, inbox: WebhookInbox) -> None:
    latencies: list[float] = []
    lock = threading.Lock()

    def deliver(worker: int) -> None:
        for i in range(50):
            body = classic(f"{worker}{i:03d}", f"9{worker}{i:03d}")
            started = time.perf_counter()
            status, _, _ = post(receiver.webhook_url, body)
            elapsed = time.perf_counter() - started
            assert status == 200
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=deliver, args=(w,)) for w in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(latencies) == 200
    p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1]
    print(f"webhook delivery p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms over 200 deliveries")
    assert p99 < 1.0
    assert inbox.count() == 400


# ---- properties: nothing a client sends yields a 500 ---------------------------------------------


@pytest.fixture(scope="module")
def shared_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookReceiver]:
    box = WebhookInbox(tmp_path_factory.mktemp("inbox") / "inbox.sqlite")
    with WebhookReceiver(box, VERIFIER) as running:
        yield running
    box.close()


VALID = classic("145", "146", op="Delete")


@given(st.one_of(st.binary(max_size=600), st.integers(0, len(VALID) - 1).map(lambda n: VALID[:n])))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_or_truncated_signed_bodies_never_get_a_500(shared_receiver: WebhookReceiver, body: bytes) -> None:
    status, answer, _ = post(shared_receiver.webhook_url, body)
    assert status in (200, 400), (status, answer)
    if status == 400:
        assert answer["detail"]


@given(st.binary(max_size=300), st.text(max_size=60))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_unsigned_random_bodies_get_401(shared_receiver: WebhookReceiver, body: bytes, header: str) -> None:
    header = "".join(ch for ch in header if ch.isprintable() and ch.isascii() and ch not in "\r\n")
    status, _, _ = post(shared_receiver.webhook_url, body, signature=header or None)
    assert status == 401


def test_storage_fault_injected_in_sqlite_is_not_a_200(receiver: WebhookReceiver, inbox: WebhookInbox) -> None:
    with sqlite3.connect(inbox.path) as raw:
        raw.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.entity_id = '666'"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    status, _, _ = post(receiver.webhook_url, classic("1", "666"))
    assert status == 500  # never acknowledge what was not stored
    assert stored_ids(inbox) == []


# ---- end to end: the sandbox's webhooks -----------------------------------------------------------


def wait_for_arrival(inbox: WebhookInbox, wanted: set[tuple[str, str]], timeout: float = 30.0) -> set:
    """Poll the inbox (as the Dagster sensor will) until every wanted (entity, id) is there or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        arrived = {(r.entity, r.entity_id) for r in inbox.read_after(0, limit=100_000)}
        if wanted <= arrived or time.monotonic() > deadline:
            return arrived
        time.sleep(0.05)  # poll interval, not a race fix: the deadline decides


def test_sandbox_simulated_activity_arrives_signed_in_the_inbox(sandbox_factory, inbox: WebhookInbox) -> None:
    from smartsync_pipeline.entities import entity_names

    sandbox = sandbox_factory(seed=11)
    realm = sandbox.realm_id
    with WebhookReceiver(inbox, sandbox.info["webhook_verifier"]) as receiver:
        for form, seed in (("classic", 1), ("cloudevents", 2)):
            sandbox.control("webhooks", {"url": receiver.url + "/webhooks/qbo", "format": form})
            result = sandbox.control("simulate", {"realm_id": realm, "operations": 20, "seed": seed})
            changed = {(c["entity"], str(c["id"])) for c in result["changes"] if c["entity"] in entity_names()}
            assert len(changed) >= 5, result
            arrived = wait_for_arrival(inbox, changed)
            assert changed <= arrived, (form, sorted(changed - arrived))
    # Read both once the receiver has stopped (it finishes requests in flight): a delivery stored a moment
    # before its counter moved made the two disagree by one when read while the sandbox was still sending.
    records = inbox.read_after(0, limit=100_000)
    counters = receiver.counters
    assert {r.realm_id for r in records} == {realm}
    assert any(r.event_id for r in records) and any(r.event_id is None for r in records)  # both forms
    assert counters.accepted >= 2
    assert (counters.rejected_signature, counters.rejected_payload, counters.errors) == (0, 0, 0)
    assert counters.events_stored == len(records)


# Reliability brief, part 2: signed JSON of the right vocabulary but any shape or type, over HTTP.
_WEBHOOK_KEYS = st.sampled_from(
    ["eventNotifications", "realmId", "dataChangeEvent", "entities", "name", "id", "operation", "lastUpdated",
     "specversion", "type", "intuitentityid", "intuitaccountid", "time", "data"]
)  # fmt: skip
_WEBHOOK_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["Bill", "Update", "Delete", "2026-11-26T10:00:00.000Z", "qbo.bill.updated.v1", "1.0", "111"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_WEBHOOK_KEYS, inner, max_size=5),
    max_leaves=30,
)  # fmt: skip


@given(_WEBHOOK_JSON)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_signed_json_of_any_shape_is_a_200_or_a_400(shared_receiver: WebhookReceiver, document: object) -> None:
    status, answer, _ = post(shared_receiver.webhook_url, json.dumps(document).encode())
    assert status in (200, 400), (status, answer, document)
    assert answer.get("detail") if status == 400 else "stored" in answer

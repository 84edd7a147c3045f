"""Webhook delivery to a tiny stdlib receiver: signed bodies, both payload forms, retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """Collects POSTed webhooks; can be told to fail the first N requests."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[tuple[bytes, dict[str, str]]] = []
        self.fail_first = fail_first
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    if receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        status = 500
                    else:
                        receiver.bodies.append((body, {k.lower(): v for k, v in self.headers.items()}))
                        status = 200
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/qbo"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not predicate(self.bodies):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.arrived.wait(remaining)
        return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def signature_ok(verifier: str, body: bytes, header: str) -> bool:
    expected = base64.b64encode(hmac.new(verifier.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, header)


def classic_entities(bodies):
    out = []
    for body, _ in bodies:
        for notification in json.loads(body)["eventNotifications"]:
            out.extend((notification["realmId"], e) for e in notification["dataChangeEvent"]["entities"])
    return out


def test_classic_webhooks_are_signed_and_cover_every_change(sandbox_factory, receiver):
    sandbox = sandbox_factory(seed=71)
    verifier = sandbox.info["webhook_verifier"]
    config = sandbox.control("webhooks", {"url": receiver.url, "format": "classic", "enabled": True})
    assert config["settings"]["enabled"] is True
    changes = sandbox.control("simulate", {"realm_id": sandbox.realm_id, "operations": 20, "seed": 1})["changes"]
    assert receiver.wait_for(lambda bodies: len(classic_entities(bodies)) >= len(changes))
    for body, headers in receiver.bodies:
        assert signature_ok(verifier, body, headers["intuit-signature"])
        assert not signature_ok("wrong-verifier", body, headers["intuit-signature"])
    events = classic_entities(receiver.bodies)
    assert {realm for realm, _ in events} == {sandbox.realm_id}
    got = [(e["name"], e["id"]) for _, e in events]
    assert got == [(c["entity"], c["id"]) for c in changes]
    operations = {e["operation"] for _, e in events}
    assert operations <= {"Create", "Update", "Delete", "Void"} and "Create" in operations
    assert all(e["lastUpdated"].endswith("Z") for _, e in events)
    # The sandbox counts a batch as delivered once the receiver's answer is back, just after the body
    # reached the receiver: wait for its count, bounded.
    deadline = time.monotonic() + 30
    report = sandbox.control("webhooks", method="GET")
    while report["delivered_events"] < len(changes) and time.monotonic() < deadline:
        report = sandbox.control("webhooks", method="GET")
    assert report["delivered_events"] == len(changes) and report["failed_batches"] == 0


def test_cloudevents_form(sandbox_factory, receiver):
    sandbox = sandbox_factory(seed=72)
    sandbox.control("webhooks", {"url": receiver.url, "format": "cloudevents"})
    changes = sandbox.control("simulate", {"operations": 5, "seed": 2})["changes"]
    assert receiver.wait_for(lambda bodies: sum(len(json.loads(b)) for b, _ in bodies) >= len(changes))
    events = [e for body, _ in receiver.bodies for e in json.loads(body)]
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["type"].startswith("qbo.") and event["type"].endswith(".v1")
        assert event["intuitaccountid"] == sandbox.realm_id
        assert {"id", "time", "intuitentityid", "data"} <= set(event)
    assert [(e["type"].split(".")[1], e["intuitentityid"]) for e in events] == [
        (c["entity"].lower(), c["id"]) for c in changes
    ]
    for body, headers in receiver.bodies:
        assert signature_ok(sandbox.info["webhook_verifier"], body, headers["intuit-signature"])


def test_failed_deliveries_are_retried(sandbox_factory):
    receiver = Receiver(fail_first=2)
    try:
        sandbox = sandbox_factory(seed=73)
        sandbox.control("webhooks", {"url": receiver.url})
        bill = sandbox.control("simulate", {"operations": 1, "seed": 4})["changes"]
        assert receiver.wait_for(lambda bodies: len(classic_entities(bodies)) >= len(bill))
        report = sandbox.control("webhooks", method="GET")
        assert report["attempts"] >= 3 and report["failed_batches"] == 0
    finally:
        receiver.close()


def test_duplicates_and_shuffle_knobs(sandbox_factory, receiver):
    sandbox = sandbox_factory(seed=74)
    sandbox.control("webhooks", {"url": receiver.url, "duplicate_rate": 1.0, "shuffle": True})
    changes = sandbox.control("simulate", {"operations": 10, "seed": 6})["changes"]
    assert receiver.wait_for(lambda bodies: len(classic_entities(bodies)) >= 2 * len(changes))
    events = [(e["name"], e["id"], e["lastUpdated"]) for _, e in classic_entities(receiver.bodies)]
    assert len(events) == 2 * len(changes)  # every batch delivered twice
    assert {(n, i) for n, i, _ in events} == {(c["entity"], c["id"]) for c in changes}

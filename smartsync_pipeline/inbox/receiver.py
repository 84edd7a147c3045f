"""``WebhookReceiver``: the HTTP endpoint Intuit POSTs webhooks to.

Order of work per delivery is the contract: bound the body, verify the signature on the raw bytes,
parse, commit to the inbox, and only then answer 200. Intuit wants an answer within 3 seconds and
retries anything else, so the receiver does nothing slow: refreshing the named entities is the Dagster
sensor's job, reading the inbox later. Bad input is always a 4xx; 500 means the receiver itself is
broken (for example the disk is full), which Intuit's retries then cover.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.qbo.webhooks import WebhookPayloadError, parse_webhook_batch, verify_signature

WEBHOOK_PATH = "/webhooks/qbo"
HEALTH_PATH = "/healthz"
SIGNATURE_HEADER = "intuit-signature"

logger = logging.getLogger("smartsync.inbox.receiver")


@dataclass(frozen=True)
class ReceiverCounters:
    """What the receiver has answered since it started (one snapshot)."""

    accepted: int = 0  # deliveries stored and answered 200
    events_stored: int = 0  # events newly written to the inbox
    duplicates: int = 0  # events that were already in the inbox (redeliveries)
    skipped_entities: int = 0  # events naming an entity smartsync does not mirror
    rejected_signature: int = 0  # 401
    rejected_payload: int = 0  # 400
    rejected_size: int = 0  # 411 / 413
    rate_limited: int = 0  # 429
    errors: int = 0  # 500: the receiver could not store a valid delivery


class ClientRateLimiter:
    """A token bucket per client address: ``burst`` requests at once, refilled at ``rate`` per second.

    Idle clients are forgotten once their bucket would be full again, so memory stays bounded even when
    many addresses send a request each.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._rate = float(rate)
        self._burst = float(burst)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()

    def allow(self, client: str) -> tuple[bool, float]:
        """``(True, 0)`` when ``client`` may proceed, else ``(False, seconds until it may)``."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(client, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                allowed, wait = True, 0.0
            else:
                self._buckets[client] = (tokens, now)
                allowed, wait = False, (1.0 - tokens) / self._rate
            if len(self._buckets) > self._max_clients:
                self._forget_idle(now)
            return allowed, wait

    def _forget_idle(self, now: float) -> None:
        refill = self._burst / self._rate
        for client, (_, at) in list(self._buckets.items()):
            if now - at >= refill:
                del self._buckets[client]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.receiver = receiver
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "smartsync-webhooks"
    sys_version = ""
    timeout = 15.0  # a client that stalls mid-body cannot hold a thread forever
    server: _Server

    # ---- routing -------------------------------------------------------------------------------
    def do_POST(self) -> None:
        self._guarded(self._post)

    def do_GET(self) -> None:
        self._guarded(self._get)

    def __getattr__(self, name: str) -> Any:
        # Any other method (PUT, DELETE, PATCH, made-up ones) is a 405, not http.server's 501.
        if name.startswith("do_"):
            return lambda: self._guarded(self._not_allowed)
        raise AttributeError(name)

    def _guarded(self, handle: Callable[[], None]) -> None:
        receiver = self.server.receiver
        try:
            allowed, wait = receiver._limiter.allow(self.client_address[0])
            if not allowed:
                receiver._count("rate_limited")
                self._answer(
                    429,
                    {"error": "rate limited"},
                    close=True,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
                return
            handle()
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away; nobody to answer
        except Exception:
            receiver._count("errors")
            logger.exception("webhook receiver failed on %s %s", self.command, urlsplit(self.path).path[:200])
            self._try_answer(500, {"error": "internal error"})

    def _get(self) -> None:
        path = urlsplit(self.path).path
        if path == HEALTH_PATH:
            self._answer(200, {"status": "ok"})
        elif path == WEBHOOK_PATH:
            self._not_allowed()
        else:
            self._answer(404, {"error": "not found"}, close=True)

    def _not_allowed(self) -> None:
        allow = "POST" if urlsplit(self.path).path == WEBHOOK_PATH else "GET"
        self._answer(405, {"error": "method not allowed"}, close=True, headers={"Allow": allow})

    # ---- the delivery --------------------------------------------------------------------------
    def _post(self) -> None:
        receiver = self.server.receiver
        if urlsplit(self.path).path != WEBHOOK_PATH:
            self._answer(404, {"error": "not found"}, close=True)
            return
        length = self._content_length()
        if length is None:
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True  # the client hung up mid-body
            return
        if not verify_signature(receiver._verifier, body, self.headers.get(SIGNATURE_HEADER)):
            receiver._count("rejected_signature")
            self._answer(401, {"error": "missing or invalid intuit-signature"})
            return
        try:
            batch = parse_webhook_batch(body, max_bytes=receiver.max_body_bytes)
        except WebhookPayloadError as exc:
            receiver._count("rejected_payload")
            self._answer(400, {"error": str(exc)})
            return
        result = receiver.inbox.add(batch.events)  # committed before we answer
        receiver._count("accepted")
        receiver._count("events_stored", result.stored)
        receiver._count("duplicates", result.duplicates)
        if batch.skipped:
            receiver._count("skipped_entities", batch.skipped)
            logger.info(
                "skipped %d event(s) for unmirrored entities %s",
                batch.skipped,
                ", ".join(batch.unknown_entities),
            )
        self._answer(200, {"stored": result.stored, "duplicates": result.duplicates, "skipped": batch.skipped})

    def _content_length(self) -> int | None:
        """The declared body length, or None after answering 400/411/413 (the body is left unread)."""
        receiver = self.server.receiver
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            receiver._count("rejected_size")
            self._answer(411, {"error": "send the body with a Content-Length, not chunked"}, close=True)
            return None
        declared = self.headers.get_all("Content-Length") or []
        if not declared:
            receiver._count("rejected_size")
            self._answer(411, {"error": "Content-Length required"}, close=True)
            return None
        text = declared[0].strip()
        if len(set(declared)) != 1 or not text.isascii() or not text.isdigit():
            receiver._count("rejected_payload")
            self._answer(400, {"error": "invalid Content-Length"}, close=True)
            return None
        length = int(text) if len(text) <= 18 else receiver.max_body_bytes + 1
        if length > receiver.max_body_bytes:
            receiver._count("rejected_size")
            self._answer(413, {"error": f"body over {receiver.max_body_bytes} bytes"}, close=True)
            return None
        return length

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it.
        text = (self.headers.get("Content-Length") or "").strip()
        too_big = (
            text.isascii() and text.isdigit() and (len(text) > 18 or int(text) > self.server.receiver.max_body_bytes)
        )
        if too_big:
            self.server.receiver._count("rejected_size")
            self._answer(413, {"error": f"body over {self.server.receiver.max_body_bytes} bytes"}, close=True)
            return False
        return super().handle_expect_100()

    # ---- answering -----------------------------------------------------------------------------
    def _answer(
        self,
        status: int,
        payload: dict[str, Any],
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            # The request body may be unread: the connection cannot carry another request.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _try_answer(self, status: int, payload: dict[str, Any]) -> None:
        try:
            self._answer(status, payload, close=True)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)


class WebhookReceiver:
    """The webhook endpoint (stdlib ``ThreadingHTTPServer``), storing verified events in ``inbox``.

    The socket is bound on construction, so ``url`` is known (and ``port=0`` resolved) before
    ``start()``. The verifier is kept private: it is never logged or shown in a repr.
    """

    def __init__(
        self,
        inbox: WebhookInbox,
        verifier: str,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = 1_048_576,
        rate_limit_per_second: float = 50,
        burst: int = 100,
    ) -> None:
        if not verifier:
            raise ValueError("a webhook verifier is required")
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        self.inbox = inbox
        self.max_body_bytes = max_body_bytes
        self._verifier = verifier
        self._limiter = ClientRateLimiter(rate_limit_per_second, burst)
        self._counts = dict.fromkeys((f.name for f in fields(ReceiverCounters)), 0)
        self._counts_lock = threading.Lock()
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8787``; Intuit posts to ``url + "/webhooks/qbo"``."""
        host, port = self._server.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def counters(self) -> ReceiverCounters:
        with self._counts_lock:
            return ReceiverCounters(**self._counts)

    def _count(self, name: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[name] += n

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` is called from another thread (or Ctrl-C)."""
        self._serving.set()
        try:
            self._server.serve_forever(poll_interval=0.05)
        finally:
            self._serving.clear()

    def start(self) -> WebhookReceiver:
        """Serve in a background thread; returns self so ``WebhookReceiver(...).start()`` reads well."""
        if self._thread is not None:
            raise RuntimeError("receiver already started")
        self._thread = threading.Thread(target=self.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting deliveries and release the port. The inbox stays open (the caller owns it)."""
        if self._thread is not None or self._serving.is_set():
            self._server.shutdown()  # also safe when the thread has not entered serve_forever yet
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"WebhookReceiver(url={self.url!r}, inbox={self.inbox!r})"

"""The QBO webhook receiver on the service's ASGI server: ``POST /webhooks/qbo``.

Order of work per delivery is the contract: bound the body (declared length, then bytes read),
verify the signature on the raw bytes in constant time, parse (classic and CloudEvents payloads),
commit to the inbox, and only then answer 200, well inside Intuit's 3 s. Refreshing the named
entities is the Dagster sensor's job, reading the inbox later.

Instead of per-IP rates (behind Intuit or a TLS proxy every delivery comes from one address): a
bound on concurrent deliveries (beyond it: 503 + Retry-After, Intuit retries), a bound on the body,
and the server's read deadline for clients that trickle a request in. Old events the sensor has
handled are pruned hourly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, fields
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from smartsync_pipeline.api.pool import BlockingPool
from smartsync_pipeline.api.problems import PROBLEM_JSON
from smartsync_pipeline.api.routes.documented import problem
from smartsync_pipeline.api.settings import ApiSettings
from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.qbo.webhooks import WebhookPayloadError, parse_webhook_batch, verify_signature

WEBHOOK_PATH = "/webhooks/qbo"
SIGNATURE_HEADER = "intuit-signature"

log = logging.getLogger("smartsync.api.webhooks")
router = APIRouter(tags=["webhooks"])


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
    busy: int = 0  # 503: every delivery slot was taken
    errors: int = 0  # 500: the receiver could not store a valid delivery
    pruned: int = 0  # handled events removed from the inbox


class WebhookEndpoint:
    """The receiver's state: inbox, verifier (private), limits, counters."""

    def __init__(self, settings: ApiSettings, inbox: WebhookInbox | None = None) -> None:
        if not settings.webhook_verifier:
            raise ValueError("a webhook verifier is required")
        self.settings = settings
        self._own_inbox = inbox is None
        self.inbox = inbox if inbox is not None else WebhookInbox(settings.home.inbox_path)
        self._verifier = settings.webhook_verifier
        self.max_body_bytes = settings.webhook_max_body_bytes
        self._slots = asyncio.Semaphore(settings.webhook_max_concurrency)
        self._pool = BlockingPool(2)  # its own threads: a slow QBO refresh never delays a 200
        self._counts = dict.fromkeys((f.name for f in fields(ReceiverCounters)), 0)
        self._counts_lock = threading.Lock()
        self.in_flight = 0  # deliveries holding a slot now

    def __repr__(self) -> str:
        return f"WebhookEndpoint(inbox={self.inbox!r})"

    @property
    def counters(self) -> ReceiverCounters:
        with self._counts_lock:
            return ReceiverCounters(**self._counts)

    def count(self, name: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[name] += n

    # -- pruning ---------------------------------------------------------------------------------

    def prune(self) -> int:
        removed = self.inbox.prune(self.settings.inbox_retention_seconds)
        self.count("pruned", removed)
        if removed:
            log.info(
                "pruned %d handled webhook events older than %.0f s", removed, self.settings.inbox_retention_seconds
            )
        return removed

    def start_pruning(self, ctx: Any) -> asyncio.Task:
        async def loop() -> None:
            while True:
                try:
                    await self._pool.run(self.prune)
                except Exception as exc:  # a locked or full disk must not stop the receiver
                    log.warning("pruning the webhook inbox failed: %s", type(exc).__name__)
                await asyncio.sleep(self.settings.inbox_prune_interval_seconds)

        return asyncio.get_running_loop().create_task(loop(), name="inbox-pruning")

    def close(self) -> None:
        self._pool.shutdown()
        if self._own_inbox:
            self.inbox.close()

    # -- a delivery ------------------------------------------------------------------------------

    def _declared_length(self, request: Request) -> int | JSONResponse:
        if "chunked" in request.headers.get("transfer-encoding", "").lower():
            self.count("rejected_size")
            return _answer(411, "send the body with a Content-Length, not chunked", close=True)
        declared = request.headers.getlist("content-length")
        if not declared:
            self.count("rejected_size")
            return _answer(411, "Content-Length required", close=True)
        text = declared[0].strip()
        if len(set(declared)) != 1 or not text.isascii() or not text.isdigit():
            self.count("rejected_payload")
            return _answer(400, "invalid Content-Length", close=True)
        length = int(text) if len(text) <= 18 else self.max_body_bytes + 1
        if length > self.max_body_bytes:
            self.count("rejected_size")
            return _answer(413, f"body over {self.max_body_bytes} bytes", close=True)
        return length

    async def receive(self, request: Request) -> JSONResponse | None:
        if self._slots.locked():
            self.count("busy")
            return _answer(503, "too many deliveries at once; retry", headers={"Retry-After": "1"}, close=True)
        async with self._slots:
            self.in_flight += 1
            try:
                return await self._deliver(request)
            finally:
                self.in_flight -= 1

    async def _deliver(self, request: Request) -> JSONResponse | None:
        length = self._declared_length(request)
        if isinstance(length, JSONResponse):
            return length
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > length:
                    self.count("rejected_payload")
                    return _answer(400, "body longer than its Content-Length", close=True)
        except ClientDisconnect:
            return None  # hung up (or cut off by the read deadline) mid-body: nobody to answer
        if not verify_signature(self._verifier, bytes(body), request.headers.get(SIGNATURE_HEADER)):
            self.count("rejected_signature")
            return _answer(401, "missing or invalid intuit-signature")
        try:
            batch = parse_webhook_batch(bytes(body), max_bytes=self.max_body_bytes)
        except WebhookPayloadError as exc:
            self.count("rejected_payload")
            return _answer(400, str(exc))
        try:
            result = await self._pool.run(self.inbox.add, batch.events)  # committed before we answer
        except Exception as exc:
            self.count("errors")
            log.error("webhook receiver could not store a delivery: %s", type(exc).__name__)
            return _answer(500, "internal error: the delivery was not stored; retry", close=True)
        self.count("accepted")
        self.count("events_stored", result.stored)
        self.count("duplicates", result.duplicates)
        if batch.skipped:
            self.count("skipped_entities", batch.skipped)
            log.info("skipped %d event(s) for unmirrored entities %s", batch.skipped, ", ".join(batch.unknown_entities))
        return JSONResponse({"stored": result.stored, "duplicates": result.duplicates, "skipped": batch.skipped})


def _answer(status: int, detail: str, *, headers: dict[str, str] | None = None, close: bool = False) -> JSONResponse:
    titles = {400: "Malformed delivery", 401: "Bad signature", 411: "Length required", 413: "Body too large",
              500: "Not stored", 503: "Busy"}  # fmt: skip
    sent = dict(headers or {})
    if close:
        sent["Connection"] = "close"  # the body may be unread: the connection cannot carry another request
    body = {"type": "about:blank", "title": titles.get(status, "Error"), "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=sent)


@router.post(
    WEBHOOK_PATH,
    summary="QBO webhook deliveries (signed with intuit-signature)",
    responses={
        200: {"description": "stored durably", "content": {"application/json": {"schema": {
            "type": "object", "required": ["stored", "duplicates", "skipped"],
            "properties": {k: {"type": "integer"} for k in ("stored", "duplicates", "skipped")}}}}},
        **{s: problem(d) for s, d in ((400, "malformed"), (401, "bad signature"), (411, "no Content-Length"),
                                      (413, "body too large"), (500, "not stored"), (503, "busy; retry"))},
    },
)  # fmt: skip
async def qbo_webhook(request: Request) -> Any:
    endpoint: WebhookEndpoint = request.app.state.webhooks
    response = await endpoint.receive(request)
    # None: the client is gone; whatever we send is dropped.
    return response if response is not None else JSONResponse({}, status_code=400, headers={"Connection": "close"})

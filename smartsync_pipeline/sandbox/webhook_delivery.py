"""Webhook delivery: every write becomes an event POSTed, signed, by a background thread.

Events are batched a little (like Intuit's), signed with ``intuit-signature =
base64(HMAC-SHA256(verifier, raw body))``, retried a few times, and — for tests of idempotent
receivers — optionally delivered twice or out of order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import queue
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from smartsync_pipeline.sandbox.qbo_time import iso_utc_millis
from smartsync_pipeline.sandbox.store import Change

log = logging.getLogger("smartsync.sandbox.webhooks")

BATCH_WINDOW_SECONDS = 0.2
BATCH_MAX_EVENTS = 50
RETRY_DELAYS = (0.2, 0.5, 1.0)
CLOUDEVENT_VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided"}


class WebhookSettingsError(ValueError):
    """A control-API payload with a bad webhook setting."""


@dataclass
class WebhookSettings:
    url: str = ""
    format: str = "classic"  # classic | cloudevents
    enabled: bool = False
    duplicate_rate: float = 0.0
    shuffle: bool = False


def sign(verifier: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(verifier.encode(), body, hashlib.sha256).digest()).decode()


def classic_payload(events: list[Change]) -> dict[str, Any]:
    by_realm: dict[str, list[dict[str, str]]] = {}
    for e in events:
        by_realm.setdefault(e.realm_id, []).append(
            {"name": e.entity, "id": e.id, "operation": e.event, "lastUpdated": iso_utc_millis(e.epoch)}
        )
    return {
        "eventNotifications": [
            {"realmId": realm, "dataChangeEvent": {"entities": entities}} for realm, entities in by_realm.items()
        ]
    }


def cloudevents_payload(events: list[Change]) -> list[dict[str, Any]]:
    return [
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "intuit.sandbox.smartsync",
            "type": f"qbo.{e.entity.lower()}.{CLOUDEVENT_VERBS.get(e.event, 'updated')}.v1",
            "datacontenttype": "application/json",
            "time": iso_utc_millis(e.epoch),
            "intuitentityid": e.id,
            "intuitaccountid": e.realm_id,
            "data": {},
        }
        for e in events
    ]


class WebhookDelivery:
    """The queue and the sender thread. ``publish`` never blocks a write."""

    def __init__(self, verifier: str, seed: int = 0) -> None:
        self._verifier = verifier
        self._rng = random.Random(seed)
        self._queue: queue.Queue[Change] = queue.Queue()
        self._lock = threading.Lock()
        self.settings = WebhookSettings()
        self.counts = {"events": 0, "delivered_batches": 0, "delivered_events": 0, "failed_batches": 0,
                       "failed_events": 0, "duplicates_sent": 0, "attempts": 0}  # fmt: skip
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"WebhookDelivery(url={self.settings.url!r}, enabled={self.settings.enabled})"

    def configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            merged = {**asdict(self.settings), **payload}
            unknown = set(payload) - set(asdict(WebhookSettings()))
            if unknown:
                raise WebhookSettingsError(f"unknown webhook settings: {sorted(unknown)}")
            if merged["format"] not in ("classic", "cloudevents"):
                raise WebhookSettingsError("format must be classic or cloudevents")
            if not 0 <= float(merged["duplicate_rate"]) <= 1:
                raise WebhookSettingsError("duplicate_rate must be between 0 and 1")
            if "url" in payload and "enabled" not in payload:
                merged["enabled"] = bool(merged["url"])
            if merged["enabled"] and not str(merged["url"]).startswith(("http://", "https://")):
                raise WebhookSettingsError("url must be an http(s) URL")
            self.settings = WebhookSettings(**merged)
            return asdict(self.settings)

    def publish(self, changes: list[Change]) -> None:
        with self._lock:
            if not self.settings.enabled:
                return
            self.counts["events"] += len(changes)
        self._idle.clear()
        for change in changes:
            self._queue.put(change)

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counts, "pending": self._queue.qsize(), "settings": asdict(self.settings)}

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def stop(self) -> None:
        self._stop.set()

    # -- the sender thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        held: list[Change] | None = None
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                if held:
                    self._deliver(held)
                    held = None
                if self._queue.empty():
                    self._idle.set()
                continue
            batch = [first]
            deadline = time.monotonic() + BATCH_WINDOW_SECONDS
            while len(batch) < BATCH_MAX_EVENTS:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            with self._lock:
                shuffle = self.settings.shuffle
            if shuffle:
                self._rng.shuffle(batch)
                if held is None and self._rng.random() < 0.5:
                    held = batch  # goes out after the next batch: out of order across batches
                    continue
            self._deliver(batch)
            if held:
                self._deliver(held)
                held = None

    def _deliver(self, batch: list[Change]) -> None:
        with self._lock:
            settings = self.settings  # configure() replaces it whole, never edits it
        if not settings.enabled:
            return
        payload: Any = classic_payload(batch) if settings.format == "classic" else cloudevents_payload(batch)
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/cloudevents-batch+json"
            if settings.format == "cloudevents"
            else "application/json",
            "intuit-signature": sign(self._verifier, body),
            "User-Agent": "smartsync-sandbox-webhooks",
        }
        ok = self._post(settings.url, body, headers)
        with self._lock:
            key = "delivered" if ok else "failed"
            self.counts[f"{key}_batches"] += 1
            self.counts[f"{key}_events"] += len(batch)
            duplicate = ok and self._rng.random() < settings.duplicate_rate
        if duplicate and self._post(settings.url, body, headers):
            with self._lock:
                self.counts["duplicates_sent"] += 1

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> bool:
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            if delay:
                time.sleep(delay)
            with self._lock:
                self.counts["attempts"] += 1
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                # configure() only accepts http(s) URLs.
                with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                    response.read()
                    if 200 <= response.status < 300:
                        return True
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                log.info("webhook attempt %d to %s failed: %s", attempt + 1, url, type(exc).__name__)
        return False

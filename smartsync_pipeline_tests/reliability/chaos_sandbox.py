"""One sandbox process shared by every thread of a soak, with restarts that lose nothing we count.

The sandbox forgets its knobs (faults, limits, webhook target) and its request counters when it
restarts, and a stop drops webhook deliveries still queued in it. ``ChaosSandbox`` therefore keeps the
knobs to re-apply, adds the counters up across restarts, and lets queued webhooks go out before a
restart. ``lock`` is held by whatever must not overlap a restart (simulate calls and the restart).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from smartsync_pipeline.sandbox.process import SandboxProcess

DEFAULT_LIMITS = {"per_window": 500, "window_seconds": 60.0, "max_concurrent": 10}


@dataclass
class ServerTally:
    """What the sandbox saw, summed over all its incarnations."""

    requests: int = 0
    throttled_429: int = 0
    server_errors_5xx: int = 0
    auth_failures_401: int = 0
    token_refreshes: int = 0
    token_refresh_failures: int = 0
    webhook_events: int = 0
    webhook_duplicates_sent: int = 0
    webhook_failed_events: int = 0

    def absorb(self, stats: dict[str, Any], webhooks: dict[str, Any]) -> None:
        self.requests += int(stats.get("requests_total", 0))
        self.throttled_429 += int(stats.get("throttled_429", 0))
        self.server_errors_5xx += int(stats.get("server_errors_5xx", 0))
        self.auth_failures_401 += int(stats.get("auth_failures_401", 0))
        refreshes = stats.get("token_refreshes", {})
        self.token_refreshes += int(refreshes.get("successful", 0))
        self.token_refresh_failures += int(refreshes.get("failed", 0))
        self.webhook_events += int(webhooks.get("events", 0))
        self.webhook_duplicates_sent += int(webhooks.get("duplicates_sent", 0))
        self.webhook_failed_events += int(webhooks.get("failed_events", 0))


class ChaosSandbox:
    """A ``SandboxProcess`` plus the bookkeeping that makes restarting it part of a test."""

    def __init__(self, proc: SandboxProcess) -> None:
        self.proc = proc
        self.lock = threading.RLock()
        self.tally = ServerTally()
        self.restarts = 0
        self._faults: dict[str, Any] = {}
        self._limits: dict[str, Any] = dict(DEFAULT_LIMITS)
        self._webhooks: dict[str, Any] | None = None
        self._absorbed = False

    @property
    def realm_id(self) -> str:
        return self.proc.realm_id

    def control(self, path: str, payload: dict[str, Any] | None = None, method: str = "POST") -> dict[str, Any]:
        with self.lock:
            return self.proc.control(path, payload, method)

    # -- knobs that survive restarts ------------------------------------------------------------------
    def set_faults(self, **knobs: Any) -> None:
        with self.lock:
            self._faults.update(knobs)
            self.proc.control("faults", knobs)

    def set_limits(self, **limits: Any) -> None:
        with self.lock:
            self._limits.update(limits)
            self.proc.control("limits", limits)

    def calm(self) -> None:
        """Every fault off and the normal limits back."""
        with self.lock:
            self._faults = {}
            self._limits = dict(DEFAULT_LIMITS)
            self.proc.control("faults", {"reset": True})
            self.proc.control("limits", dict(DEFAULT_LIMITS))

    def configure_webhooks(self, settings: dict[str, Any]) -> None:
        with self.lock:
            self._webhooks = dict(settings)
            self.proc.control("webhooks", settings)

    # -- webhooks and restarts ------------------------------------------------------------------------
    def webhooks_delivered(self, timeout: float) -> bool:
        """Wait until every webhook event published so far was sent (or failed for good)."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.proc.control("webhooks", method="GET")
            done = report["delivered_events"] + report["failed_events"]
            if report["pending"] == 0 and done >= report["events"]:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)  # poll interval; the deadline decides

    def restart(self, webhook_timeout: float = 30.0) -> float:
        """Stop and start on the same port with the same state file; returns the downtime in seconds."""
        with self.lock:
            self.webhooks_delivered(webhook_timeout)
            self._absorb_counters()
            started = time.monotonic()
            self.proc.restart()
            downtime = time.monotonic() - started
            self.restarts += 1
            if self._webhooks is not None:
                self.proc.control("webhooks", self._webhooks)
            if self._faults:
                self.proc.control("faults", self._faults)
            self.proc.control("limits", self._limits)
            return downtime

    def _absorb_counters(self) -> None:
        stats = self.proc.control("stats", method="GET")
        webhooks = self.proc.control("webhooks", method="GET")
        self.tally.absorb(stats, webhooks)

    def close_tally(self) -> ServerTally:
        """Add the running incarnation's counters (call once, at the end)."""
        with self.lock:
            if not self._absorbed:
                self._absorb_counters()
                self._absorbed = True
            return self.tally

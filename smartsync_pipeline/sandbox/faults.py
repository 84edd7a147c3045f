"""Injected trouble for tests: latency, random 5xx, scripted failures, an outage switch.

Every knob is plain data (``FaultSettings``) changed through the control API; the HTTP layer asks
``next_failure()`` once per admitted API request.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

ALLOWED_STATUSES = (401, 429, 500, 502, 503)


class FaultSettingsError(ValueError):
    """A control-API payload with an unknown knob or a bad value."""


@dataclass
class FaultSettings:
    latency_ms: int = 0
    latency_jitter_ms: int = 0
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 503])
    html_errors: bool = False
    xml_throttle: bool = False
    retry_after: bool = True
    throttle_retry_after: int = 1  # the Retry-After (seconds) of a forced 429 (fail_next, error_rate)
    down: bool = False
    fail_next: list[dict[str, int]] = field(default_factory=list)
    report_cell_limit: int = 400_000  # QBO cuts a report past this many cells (rows x columns)
    # The token endpoint waits this long after a successful refresh (tokens already issued, the old
    # refresh token possibly dead) before it answers: the moment a client crash loses a rotation.
    token_pause_ms: int = 0


class FaultInjector:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.settings = FaultSettings()

    def update(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply the given knobs (others keep their value); ``{"reset": true}`` restores defaults."""
        with self._lock:
            if payload.get("reset"):
                self.settings = FaultSettings()
            known = set(asdict(FaultSettings()))
            unknown = set(payload) - known - {"reset"}
            if unknown:
                raise FaultSettingsError(f"unknown fault knobs: {sorted(unknown)}")
            new = FaultSettings(**{**asdict(self.settings), **{k: v for k, v in payload.items() if k != "reset"}})
            if not 0.0 <= float(new.error_rate) <= 1.0:
                raise FaultSettingsError("error_rate must be between 0 and 1")
            if not new.error_statuses or any(s not in ALLOWED_STATUSES for s in new.error_statuses):
                raise FaultSettingsError(f"error_statuses must be taken from {ALLOWED_STATUSES}")
            for item in new.fail_next:
                if not isinstance(item, dict) or item.get("status") not in ALLOWED_STATUSES:
                    raise FaultSettingsError(f"fail_next items need a status from {ALLOWED_STATUSES}")
                item.setdefault("count", 1)
            if int(new.latency_ms) < 0 or int(new.latency_jitter_ms) < 0 or int(new.token_pause_ms) < 0:
                raise FaultSettingsError("latency and pauses must be >= 0")
            if not 1 <= int(new.throttle_retry_after) <= 3600:
                raise FaultSettingsError("throttle_retry_after must be between 1 and 3600 seconds")
            if int(new.report_cell_limit) < 1:
                raise FaultSettingsError("report_cell_limit must be >= 1")
            new.fail_next = [dict(item) for item in new.fail_next]
            self.settings = new
            return asdict(new)

    def current(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self.settings)

    def latency_seconds(self) -> float:
        with self._lock:
            s = self.settings
            jitter = self._rng.uniform(0, s.latency_jitter_ms) if s.latency_jitter_ms else 0.0
            return (s.latency_ms + jitter) / 1000.0

    def next_failure(self) -> int | None:
        """The HTTP status to fail this request with, or None. Scripted ``fail_next`` come first."""
        with self._lock:
            s = self.settings
            while s.fail_next:
                head = s.fail_next[0]
                if int(head.get("count", 1)) <= 0:
                    s.fail_next.pop(0)
                    continue
                head["count"] = int(head.get("count", 1)) - 1
                status = int(head["status"])
                if head["count"] <= 0:
                    s.fail_next.pop(0)
                return status
            if s.error_rate and self._rng.random() < s.error_rate:
                return int(self._rng.choice(s.error_statuses))
            return None

"""The ``/_sandbox`` control API: test knobs as JSON over HTTP (loopback only, no auth).

Nothing here ever returns a token or secret; the start-up line is the only place they appear.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import numpy as np

from smartsync_pipeline.entities.registry import UnknownEntityError, entity
from smartsync_pipeline.sandbox.qbo_time import iso, parse_time
from smartsync_pipeline.sandbox.runtime import SandboxRuntime
from smartsync_pipeline.sandbox.simulator import simulate

STREAM_CHUNK_OBJECTS = 500
MAX_SIMULATED_OPERATIONS = 100_000


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def _payload_errors() -> Iterator[None]:
    """A bad value in a payload answers 400. Every settings error (fault knobs, webhook settings, time
    formats) is a ValueError."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise ControlError(str(exc)) from None


class ControlApi:
    def __init__(self, runtime: SandboxRuntime) -> None:
        self.runtime = runtime

    def handle(self, method: str, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        handlers = {
            "clock": self.clock,
            "faults": self.faults,
            "revoke": self.revoke,
            "limits": self.limits,
            "simulate": self.simulate,
            "stats": self.stats,
            "stats/reset": self.stats_reset,
            "webhooks": self.webhooks,
            "auth_code": self.auth_code,
            "health": self.health,
        }
        handler = handlers.get(route)
        if handler is None:
            raise ControlError(f"no control endpoint {route!r}", 404)
        return handler(method, payload)

    def _realm(self, payload: dict[str, Any]) -> str:
        realm = str(payload.get("realm_id") or self.runtime.realm_ids[0])
        if realm not in self.runtime.companies:
            raise ControlError(f"unknown realm {realm!r}", 404)
        return realm

    # -- knobs ---------------------------------------------------------------------------------------
    def clock(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        clock = self.runtime.clock
        if method == "POST":
            with _payload_errors():
                if "freeze" in payload:
                    clock.freeze(bool(payload["freeze"]))
                if "set" in payload:
                    clock.set(parse_time(str(payload["set"])))
                if "advance_seconds" in payload:
                    clock.advance(float(payload["advance_seconds"]))
            self.runtime.journal_clock()
        now = clock.now()
        return {"now": iso(now), "epoch": now, "frozen": clock.frozen}

    def faults(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method == "POST":
            with _payload_errors():
                return self.runtime.faults.update(payload)
        return self.runtime.faults.current()

    def revoke(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        realm = self._realm(payload)
        return {"realm_id": realm, "revoked_access_tokens": self.runtime.authority.revoke_access(realm)}

    def limits(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        limits = self.runtime.limits
        if method == "POST":
            with _payload_errors():
                per_window = int(payload.get("per_window", limits.per_window))
                window = float(payload.get("window_seconds", limits.window_seconds))
                concurrent = int(payload.get("max_concurrent", limits.max_concurrent))
            if per_window < 1 or window <= 0 or concurrent < 1:
                raise ControlError("limits must be positive")
            limits.per_window, limits.window_seconds, limits.max_concurrent = per_window, window, concurrent
            if payload.get("reset_window", True):
                for throttle in self.runtime.throttles.values():
                    throttle.reset_window()
        return asdict(limits)

    def simulate(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method != "POST":
            raise ControlError("use POST", 405)
        realm = self._realm(payload)
        with _payload_errors():
            operations = int(payload.get("operations", 10))
            seed = int(payload.get("seed", 0))
        if not 0 <= operations <= MAX_SIMULATED_OPERATIONS:
            raise ControlError(f"operations must be between 0 and {MAX_SIMULATED_OPERATIONS}")
        changes = simulate(self.runtime.companies[realm], operations, seed)
        return {"realm_id": realm, "changes": [c.as_dict() for c in changes]}

    def stats(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method == "POST":
            return self.stats_reset(method, payload)
        return self.runtime.stats.as_dict()

    def stats_reset(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.runtime.stats.reset()
        for throttle in self.runtime.throttles.values():
            throttle.reset_stats()
        return {"reset": True}

    def webhooks(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method == "POST":
            with _payload_errors():
                self.runtime.webhooks.configure(payload)
        return self.runtime.webhooks.report()

    def auth_code(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        realm = self._realm(payload)
        return {"realm_id": realm, "auth_code": self.runtime.authority.new_authorization_code(realm)}

    def health(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "realms": self.runtime.realm_ids, "scale": self.runtime.config.scale}

    # -- the full object dump, streamed ----------------------------------------------------------------
    def object_chunks(self, route: str) -> Iterator[bytes]:
        """``objects/{realm}/{Entity}`` → ``{"active": [...], "deleted": [ids]}`` in chunks. The
        overlay is snapshotted under the realm lock; rendering happens outside it."""
        parts = route.split("/")
        if len(parts) != 3:
            raise ControlError("use objects/{realm}/{Entity}", 404)
        realm = parts[1]
        if realm not in self.runtime.companies:
            raise ControlError(f"unknown realm {realm!r}", 404)
        try:
            spec = entity(parts[2])
        except UnknownEntityError as exc:
            raise ControlError(str(exc), 404) from None
        company = self.runtime.companies[realm]
        table = company.table(spec.name)
        with company.lock:
            overlay = dict(table.overlay)
            masked = table.masked.copy()
            deleted = sorted(table.tombstones)
        base_rows = np.flatnonzero(~masked)

        def generate() -> Iterator[bytes]:
            yield b'{"active":['
            first = True
            ids = sorted([int(r) + 1 for r in base_rows] + list(overlay))
            for start in range(0, len(ids), STREAM_CHUNK_OBJECTS):
                parts_out = []
                for oid in ids[start : start + STREAM_CHUNK_OBJECTS]:
                    obj = overlay.get(oid) or table.base.render(oid - 1)
                    parts_out.append(json.dumps(obj, separators=(",", ":")))
                text = ",".join(parts_out)
                yield (text if first else "," + text).encode()
                first = False
            yield b'],"deleted":' + json.dumps([str(d) for d in deleted]).encode() + b"}"

        return generate()

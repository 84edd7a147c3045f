"""Structured access log (one JSON line per request on logger ``smartsync.api.access``) and the
per-request headers that routes leave in ``scope["state"]`` (rate-limit headers).

Logged: method, path (never the query string: an OAuth callback carries a code there), status,
duration, bytes, the key *id* (never the key), the business and the client address."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

access_log = logging.getLogger("smartsync.api.access")

Scope = dict[str, Any]


class AccessLogMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 0
        sent = 0

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = state.get("response_headers") or {}
                if extra:
                    message = {
                        **message,
                        "headers": [
                            *message.get("headers", []),
                            *((k.lower().encode(), v.encode()) for k, v in extra.items()),
                        ],
                    }
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                path = scope.get("path", "")
                parts = path.split("/")
                record = {
                    "method": scope.get("method"),
                    "path": path[:300],
                    "status": status or 500,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "bytes": sent,
                    "key_id": state.get("key_id"),
                    "business": parts[2][:64] if len(parts) > 2 and parts[1] == "businesses" else None,
                    "client": (scope.get("client") or ("", 0))[0],
                }
                access_log.info(json.dumps(record, separators=(",", ":")))

"""What the sandbox saw, for tests that assert on client behaviour (requests by kind, 429s, refreshes,
minor versions, the highest concurrency)."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

RECENT_QUERIES = 200


class SandboxStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.throttled = 0
            self.server_errors = 0
            self.auth_failures = 0
            self.refresh_ok = 0
            self.refresh_failed = 0
            self.code_exchanges = 0
            self.minorversions: Counter[str] = Counter()
            self.missing_minorversion = 0
            self.queries: deque[str] = deque(maxlen=RECENT_QUERIES)
            self.max_concurrent_seen: dict[str, int] = {}

    def request(self, kind: str) -> None:
        with self._lock:
            self.requests[kind] += 1

    def minorversion(self, value: str | None) -> None:
        with self._lock:
            if value is None:
                self.missing_minorversion += 1
            else:
                self.minorversions[value] += 1

    def query(self, text: str) -> None:
        with self._lock:
            self.queries.append(text)

    def response(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1
            if status == 429:
                self.throttled += 1
            elif status >= 500:
                self.server_errors += 1
            elif status == 401:
                self.auth_failures += 1

    def refresh(self, ok: bool, code_exchange: bool = False) -> None:
        with self._lock:
            if code_exchange and ok:
                self.code_exchanges += 1
            elif ok:
                self.refresh_ok += 1
            else:
                self.refresh_failed += 1

    def concurrency(self, realm_id: str, seen: int) -> None:
        with self._lock:
            self.max_concurrent_seen[realm_id] = max(self.max_concurrent_seen.get(realm_id, 0), seen)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "requests_total": sum(self.requests.values()),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "throttled_429": self.throttled,
                "server_errors_5xx": self.server_errors,
                "auth_failures_401": self.auth_failures,
                "token_refreshes": {"successful": self.refresh_ok, "failed": self.refresh_failed},
                "code_exchanges": self.code_exchanges,
                "minorversions": dict(self.minorversions),
                "missing_minorversion": self.missing_minorversion,
                "max_concurrent_seen": max(self.max_concurrent_seen.values(), default=0),
                "max_concurrent_by_realm": dict(self.max_concurrent_seen),
                "recent_queries": list(self.queries),
            }

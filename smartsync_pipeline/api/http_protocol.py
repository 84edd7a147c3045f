"""uvicorn's h11 protocol with a read deadline: a request's headers and body must arrive within
``read_timeout`` seconds of its first byte (or of the connection opening), else the connection is
closed. uvicorn bounds idle keep-alive connections but not a client that trickles a request in a byte
at a time, which would otherwise hold a connection (and a webhook slot) for ever."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("smartsync.api.http")
_FINISHED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


class DeadlineH11Protocol(H11Protocol):
    read_timeout: float = 10.0
    timed_out = 0  # connections closed for being too slow (all instances, this process)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _request_read(self) -> bool:
        return self.conn.their_state in _FINISHED

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and not self._request_read():
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if self._request_read():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._request_read():
            self._disarm()  # idle between requests: uvicorn's keep-alive timeout governs that

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _too_slow(self) -> None:
        self._deadline = None
        if self._request_read() or self.transport.is_closing():
            return
        type(self).timed_out += 1
        client = f"{self.client[0]}" if self.client else "?"
        log.info("closing a connection from %s: request not read within %.1f s", client, self.read_timeout)
        self.transport.close()


def protocol_with_deadline(read_timeout: float) -> type[DeadlineH11Protocol]:
    if read_timeout <= 0:
        raise ValueError("read_timeout must be positive")
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"read_timeout": float(read_timeout)})

"""Running the app under uvicorn: in the foreground with graceful shutdown (``smartsync serve``), or
in a background thread (``ServedApp``: tests, benchmarks, the chaos soak).

Graceful shutdown: on SIGTERM or Ctrl-C uvicorn stops accepting connections, lets in-flight requests
finish (bounded by ``graceful_seconds``), then the app's lifespan closes the pool and the reader."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from typing import Any

import uvicorn

from smartsync_pipeline.api.http_protocol import protocol_with_deadline

GRACEFUL_SECONDS = 30


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (``port=0`` picks a free one), so the URL is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def make_server(app: Any, *, read_timeout: float = 10.0, graceful_seconds: float = GRACEFUL_SECONDS) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        http=protocol_with_deadline(read_timeout),
        lifespan="on",
        log_config=None,
        access_log=False,  # our own structured access log (no query strings, no keys)
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=int(graceful_seconds),
        backlog=2048,
    )
    return uvicorn.Server(config)


def serve(app: Any, sock: socket.socket, *, read_timeout: float = 10.0) -> list[int]:
    """Serve in the foreground until SIGINT/SIGTERM, then shut down gracefully and return the signals
    that stopped it. (uvicorn re-raises them after its shutdown; our handlers make that a no-op, so
    a stop by signal is a clean exit 0.)"""
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda s, f: received.append(s)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        make_server(app, read_timeout=read_timeout).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return received


class ServedApp:
    """The app served from a background thread on its own event loop."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, read_timeout: float = 10.0) -> None:
        self.app = app
        self.sock = bind(host, port)
        self.server = make_server(app, read_timeout=read_timeout)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return url_of(self.sock)

    def start(self, timeout: float = 30.0) -> ServedApp:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), name="smartsync-api", daemon=True
        )
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self.server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self.server.started:
            raise RuntimeError("the server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=GRACEFUL_SECONDS + 5)
            self._thread = None
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> ServedApp:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

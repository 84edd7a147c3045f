"""A tiny HTTP server on loopback that answers the QBO API with whatever bytes a test scripts.

Real QBO (and whatever stands in front of it) sometimes sends bodies that are not what the docs say:
HTML error pages under 200, truncated JSON, the wrong shapes. A company connected with this server as
its ``api_base`` shows what the client and the sync engine do with them. Authentication is not
checked here; tokens come from a real sandbox's token endpoint.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: bytes
    content_type: str = "application/json"


Script = Callable[[str, dict[str, str]], CannedAnswer]  # (endpoint: "query" | "cdc" | ..., params) -> answer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        endpoint = url.path.rstrip("/").rsplit("/", 1)[-1]
        self.server.requests[endpoint] += 1
        answer = self.server.script(endpoint, params)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: Counter[str] = Counter()
        super().__init__(("127.0.0.1", 0), _Handler)


class GarbageQBO:
    """``with GarbageQBO(script) as server: ... server.api_base ...``"""

    def __init__(self, script: Script) -> None:
        self._server = _Server(script)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def api_base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v3"

    @property
    def requests(self) -> Counter[str]:
        return self._server.requests

    def set_script(self, script: Script) -> None:
        self._server.script = script

    def __enter__(self) -> GarbageQBO:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

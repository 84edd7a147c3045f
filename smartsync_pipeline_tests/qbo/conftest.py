"""Connect a QBO client to a real sandbox process (fixtures from the top-level conftest)."""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyConnection, CompanyStore, TokenSet, TokenStore


def count_terms_together(clients: list[QBOClient], calls: int = 1, timeout: float = 60) -> list[Any]:
    """One thread per client, all starting at once, each running ``calls`` ``COUNT(*)`` of Term; the
    answers (or the QBOError raised) in completion order."""
    from smartsync_pipeline.qbo.errors import QBOError

    results: list[Any] = []
    barrier = threading.Barrier(len(clients))

    def run(client: QBOClient) -> None:
        barrier.wait(timeout=30)
        for _ in range(calls):
            try:
                results.append(client.count("Term"))
            except QBOError as exc:
                results.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results


def run_in_processes(
    target: Callable[..., None], root: str, realm: str, *, count: int = 2, timeout: float
) -> list[Any]:
    """Run ``target(root, realm, barrier, out)`` in ``count`` spawned processes that start together;
    return what each put on ``out``."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(count), ctx.Queue()
    procs = [ctx.Process(target=target, args=(root, realm, barrier, out)) for _ in range(count)]
    for p in procs:
        p.start()
    results = [out.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(30)
    return results


def save_company(info: dict[str, Any], home: Home, *, access_ttl: float = 3000) -> tuple[CompanyConnection, TokenStore]:
    """Store the sandbox's company and its start-up tokens in ``home`` (as `smartsync connect` would)."""
    conn = CompanyConnection(
        realm_id=str(info["realm_id"]),
        api_base=info["api_base"],
        token_url=info["token_url"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        name="sandbox",
    )
    now = datetime.now(UTC)
    tokens = TokenSet(
        info["access_token"], info["refresh_token"], now + timedelta(seconds=access_ttl), now + timedelta(days=100)
    )
    store = CompanyStore(home)
    store.save(conn, tokens)
    return conn, store.tokens(conn.realm_id)


def secrets_of(info: dict[str, Any]) -> list[str]:
    return [info["access_token"], info["refresh_token"], info["client_secret"]]


@pytest.fixture
def home(smartsync_home: Path) -> Home:
    return Home(smartsync_home).ensure()


@pytest.fixture
def client_for(home: Home) -> Iterator[Callable[..., QBOClient]]:
    """``client_for(sandbox, **client_options)``: a client on that sandbox's first company."""
    made: list[QBOClient] = []

    def make(sandbox: Any, **options: Any) -> QBOClient:
        store = CompanyStore(home)
        realm = str(sandbox.info["realm_id"])
        if realm not in store.realms():
            save_company(sandbox.info, home)
        client = QBOClient(store.load(realm), store.tokens(realm), home=home, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


class ScriptedQBO:
    """A loopback HTTP server that answers each request with the next scripted (status, headers, body):
    for wire situations the sandbox has no knob for."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.script = list(script)
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                status, headers, body = outer.script.pop(0) if outer.script else (500, {}, b"")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        port = self.server.server_address[1]
        self.info = {
            "realm_id": "4620816365",
            "api_base": f"http://127.0.0.1:{port}/v3",
            "token_url": f"http://127.0.0.1:{port}/oauth2/v1/tokens/bearer",
            "client_id": "scripted-client",
            "client_secret": "scripted-secret-value",
            "access_token": "scripted-access-token-value",
            "refresh_token": "scripted-refresh-token-value",
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[[list[tuple[int, dict[str, str], bytes]]], ScriptedQBO]]:
    servers: list[ScriptedQBO] = []

    def make(script: list[tuple[int, dict[str, str], bytes]]) -> ScriptedQBO:
        server = ScriptedQBO(script)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def json_body(doc: Any) -> bytes:
    return json.dumps(doc).encode()

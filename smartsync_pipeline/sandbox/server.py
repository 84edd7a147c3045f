"""The HTTP face of the sandbox: QBO's API, its token endpoint and the ``/_sandbox`` control API.

Stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive. The order of checks for an API call
is: outage switch → bearer token → realm limits (429) → injected latency/failures → minorversion →
the endpoint. Secrets never reach a log line: only method, path and status are logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from smartsync_pipeline.entities.registry import ENTITIES, SINGLETON, find_entity
from smartsync_pipeline.sandbox import api_errors as errors
from smartsync_pipeline.sandbox.cdc import parse_cdc_request, run_cdc
from smartsync_pipeline.sandbox.config import SandboxConfig
from smartsync_pipeline.sandbox.control_api import ControlApi, ControlError
from smartsync_pipeline.sandbox.oauth import InvalidClient, InvalidGrant
from smartsync_pipeline.sandbox.qbo_time import iso_millis
from smartsync_pipeline.sandbox.query_engine import run_query
from smartsync_pipeline.sandbox.reports import run_report
from smartsync_pipeline.sandbox.runtime import SandboxRuntime
from smartsync_pipeline.sandbox.write_rules import execute_write

log = logging.getLogger("smartsync.sandbox.http")

TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # noqa: S105
AUTHORIZE_PATH = "/connect/oauth2"  # Intuit's is https://appcenter.intuit.com/connect/oauth2
ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
MIN_MINOR_VERSION = 75
MAX_BODY_BYTES = 10 * 1024 * 1024


SINGLETON_PATHS = {spec.endpoint: spec.name for spec in ENTITIES if spec.strategy == SINGLETON}


def _classify(method: str, rest: list[str]) -> str:
    if rest[:1] == ["query"]:
        return "query"
    if rest[:1] == ["cdc"]:
        return "cdc"
    if rest[:1] == ["reports"]:
        return "report"
    if method == "POST":
        return "write"
    return "read"


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "smartsync-sandbox/1.0"
    server: SandboxHTTPServer

    @property
    def runtime(self) -> SandboxRuntime:
        return self.server.runtime

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        if self.runtime.config.access_log:
            log.info("%s %s", self.address_string(), format % args)

    # -- plumbing ------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("intuit_tid", secrets.token_hex(8))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode(), "application/json", headers)

    def _now(self) -> float:
        return self.runtime.clock.now()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = self._read_body() if method in ("POST", "PUT") else b""
        try:
            if url.path == TOKEN_PATH:
                self._token(method, body)
            elif url.path == AUTHORIZE_PATH:
                self._authorize(method, params)
            elif url.path.startswith("/_sandbox/") or url.path == "/_sandbox":
                self._control(method, url.path, params, body)
            elif url.path.startswith("/v3/company/"):
                self._api(method, url.path, params, body)
            else:
                fault = errors.ApiFault(404, "404", "Not Found", f"no such endpoint: {url.path}", None, "SystemFault")
                self._json(404, fault.body(self._now()))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log.exception("unexpected error serving %s %s", method, url.path)
            self.runtime.stats.response(500)
            self._json(500, errors.server_error_body(500, self._now()))

    # -- OAuth ---------------------------------------------------------------------------------------
    def _token(self, method: str, body: bytes) -> None:
        stats = self.runtime.stats
        stats.request("token")
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if method != "POST":
            self._json(405, {"error": "invalid_request", "error_description": "use POST"}, no_store)
            return
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
                client_id, _, client_secret = decoded.partition(":")
                client_id, client_secret = unquote(client_id), unquote(client_secret)
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = ""
        authority = self.runtime.authority
        try:
            authority.check_client(client_id, client_secret)
        except InvalidClient:
            stats.refresh(False)
            stats.response(401)
            self._json(401, {"error": "invalid_client"}, no_store)
            return
        grant_type = form.get("grant_type")
        try:
            if grant_type == "refresh_token":
                realm, pair = authority.refresh(form.get("refresh_token", ""))
                stats.refresh(True)
                pause = self.runtime.faults.current()["token_pause_ms"]
                if pause:
                    time.sleep(pause / 1000)  # issued, not yet answered (a fault knob)
            elif grant_type == "authorization_code":
                realm, pair = authority.exchange_code(form.get("code", ""), form.get("redirect_uri"))
                stats.refresh(True, code_exchange=True)
                pair = {**pair, "realmId": realm}
            else:
                stats.response(400)
                self._json(400, {"error": "unsupported_grant_type"}, no_store)
                return
        except InvalidGrant:
            stats.refresh(False)
            stats.response(400)
            self._json(400, {"error": "invalid_grant"}, no_store)
            return
        stats.response(200)
        self._json(200, pair, no_store)

    def _authorize(self, method: str, params: dict[str, str]) -> None:
        """Intuit's authorize endpoint, with the user's consent given at once (``sandbox_consent=deny``
        models a user who declines; ``sandbox_realm`` the company they pick). Problems with the client
        or the redirect URI are shown, never redirected; the rest go back to the redirect URI."""
        self.runtime.stats.request("authorize")
        if method != "GET":
            self._json(405, {"error": "invalid_request", "error_description": "use GET"})
            return
        redirect_uri = params.get("redirect_uri", "")
        if urlsplit(redirect_uri).scheme not in ("http", "https") or not urlsplit(redirect_uri).netloc:
            self._json(400, {"error": "invalid_request", "error_description": "redirect_uri must be an http(s) URL"})
            return
        if params.get("client_id", "") != self.runtime.authority.client_id:
            self._json(400, {"error": "invalid_client", "error_description": "unknown client_id"})
            return
        answer = {"state": params["state"]} if "state" in params else {}
        if params.get("response_type") != "code":
            answer["error"] = "unsupported_response_type"
        elif ACCOUNTING_SCOPE not in params.get("scope", "").split():
            answer["error"] = "invalid_scope"
        elif params.get("sandbox_consent") == "deny":
            answer["error"] = "access_denied"
        else:
            realm = params.get("sandbox_realm") or self.runtime.realm_ids[0]
            if realm not in self.runtime.realm_ids:
                self._json(400, {"error": "invalid_request", "error_description": f"no company {realm}"})
                return
            answer["code"] = self.runtime.authority.authorize(params["client_id"], redirect_uri, realm)
            answer["realmId"] = realm
        separator = "&" if urlsplit(redirect_uri).query else "?"
        location = redirect_uri + separator + urlencode(answer)
        self.runtime.stats.response(302)
        self._send(302, b"", "text/plain", {"Location": location, "Cache-Control": "no-store"})

    # -- the QBO API ---------------------------------------------------------------------------------
    def _api(self, method: str, path: str, params: dict[str, str], body: bytes) -> None:
        runtime = self.runtime
        parts = [unquote(p) for p in path.split("/")[3:] if p != ""]
        realm, rest = (parts[0], parts[1:]) if parts else ("", [])
        kind = _classify(method, rest)
        runtime.stats.request(kind)
        minor = params.get("minorversion")
        runtime.stats.minorversion(minor)
        if runtime.faults.settings.down:
            self._server_error(503)
            return
        bearer = self.headers.get("Authorization", "")
        token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else None
        check = runtime.authority.authenticate(token, realm)
        if not check.ok:
            self._auth_failure(check.reason)
            return
        company = runtime.companies[realm]
        throttle = runtime.throttles[realm]
        admission = throttle.try_acquire()
        if not admission.admitted:
            self._throttled(admission.retry_after)
            return
        runtime.stats.concurrency(realm, throttle.max_in_flight_seen)
        try:
            latency = runtime.faults.latency_seconds()
            if latency > 0:
                time.sleep(latency)
            failure = runtime.faults.next_failure()
            if failure == 429:
                self._throttled(int(runtime.faults.settings.throttle_retry_after))
            elif failure == 401:
                self._auth_failure("Token expired")
            elif failure is not None:
                self._server_error(failure)
            else:
                status, payload = self._endpoint(company, method, rest, params, body, minor)
                runtime.stats.response(status)
                self._json(status, payload)
        except errors.ApiFault as fault:
            runtime.stats.response(fault.status)
            self._json(fault.status, fault.body(self._now()))
        finally:
            throttle.release()

    def _endpoint(
        self, company: Any, method: str, rest: list[str], params: dict[str, str], body: bytes, minor: str | None
    ) -> tuple[int, dict[str, Any]]:
        if minor is not None and (not minor.isdigit() or int(minor) < MIN_MINOR_VERSION):
            raise errors.validation(
                errors.MINOR_VERSION,
                "Invalid minorversion",
                f"minorversion {minor!r} is not supported; minor versions 1-74 are retired, use 75 or later",
                "minorversion",
            )
        if rest == ["query"] and method in ("GET", "POST"):
            text = params.get("query")
            if text is None and method == "POST":
                text = body.decode("utf-8", "replace")
            self.runtime.stats.query(text or "")
            return 200, {"QueryResponse": run_query(company, text or ""), "time": iso_millis(self._now())}
        if rest == ["cdc"] and method == "GET":
            names, since = parse_cdc_request(params.get("entities"), params.get("changedSince"), self._now())
            return 200, {
                "CDCResponse": [{"QueryResponse": run_cdc(company, names, since)}],
                "time": iso_millis(self._now()),
            }
        if len(rest) == 2 and rest[0] == "reports" and method == "GET":
            limit = self.runtime.faults.settings.report_cell_limit
            return 200, run_report(company, rest[1], params, self._now(), cell_limit=limit)
        if rest and rest[0].lower() in SINGLETON_PATHS and method == "GET" and len(rest) <= 2:
            # QBO reads singletons as /companyinfo/{realmId} and /preferences: the one object (Id 1).
            name = SINGLETON_PATHS[rest[0].lower()]
            return 200, {name: company.get(name, 1), "time": iso_millis(self._now())}
        if rest and rest[0].lower() not in ("query", "cdc"):
            spec = find_entity(rest[0])
            if spec is None or rest[0].lower() != spec.endpoint:
                raise errors.ApiFault(
                    400, errors.UNSUPPORTED_OPERATION, "Unsupported Operation", f"unsupported entity {rest[0]!r}"
                )
            if len(rest) == 2 and method == "GET":
                obj = company.get(spec.name, rest[1])
                if obj is None:
                    raise errors.not_found(spec.name, rest[1])
                return 200, {spec.name: obj, "time": iso_millis(self._now())}
            if len(rest) == 1 and method == "POST":
                try:
                    payload = json.loads(body or b"null")
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise errors.validation(
                        errors.INVALID_VALUE,
                        "Request has invalid or unsupported property",
                        "the body is not valid JSON",
                    ) from None
                operation = params.get("operation")
                response, _ = execute_write(company, spec.name, payload, operation)
                return 200, {spec.name: response, "time": iso_millis(self._now())}
        raise errors.ApiFault(400, errors.UNSUPPORTED_OPERATION, "Unsupported Operation", f"{method} {'/'.join(rest)}")

    def _auth_failure(self, reason: str) -> None:
        self.runtime.stats.response(401)
        self._json(401, errors.authentication_body(reason, self._now()), {"WWW-Authenticate": 'Bearer realm="Intuit"'})

    def _throttled(self, retry_after: int) -> None:
        runtime = self.runtime
        runtime.stats.response(429)
        settings = runtime.faults.settings
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if settings.retry_after else {}
        if settings.xml_throttle:
            self._send(429, errors.throttle_xml(self._now()), "text/xml", headers)
        else:
            self._json(429, errors.throttle_body(self._now()), headers)

    def _server_error(self, status: int) -> None:
        self.runtime.stats.response(status)
        if self.runtime.faults.settings.html_errors:
            self._send(status, errors.server_error_html(status), "text/html")
        else:
            self._json(status, errors.server_error_body(status, self._now()))

    # -- control API ---------------------------------------------------------------------------------
    def _control(self, method: str, path: str, params: dict[str, str], body: bytes) -> None:
        host = self.client_address[0]
        if not (host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")):
            self._json(403, {"error": "the control API answers on loopback only"})
            return
        api = ControlApi(self.runtime)
        route = path[len("/_sandbox") :].strip("/")
        try:
            payload = json.loads(body) if body.strip() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._json(400, {"error": "the body is not valid JSON"})
            return
        try:
            if method == "GET" and route.startswith("objects/"):
                self._stream_objects(api, route)
                return
            result = api.handle(method, route, payload if isinstance(payload, dict) else {})
        except ControlError as exc:
            self._json(exc.status, {"error": str(exc)})
            return
        self._json(200, result)

    def _stream_objects(self, api: ControlApi, route: str) -> None:
        chunks = api.object_chunks(route)  # validates before anything is sent
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for chunk in chunks:
            self.wfile.write(chunk)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], runtime: SandboxRuntime) -> None:
        self.runtime = runtime
        super().__init__(address, SandboxHandler)


class SandboxServer:
    """The sandbox in this process (benchmarks, embedding): ``SandboxServer(config).start()``."""

    def __init__(self, config: SandboxConfig | None = None, **options: Any) -> None:
        self.config = config or SandboxConfig(**options)
        self.runtime: SandboxRuntime | None = None
        self.httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.info: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"SandboxServer(api_base={self.info.get('api_base')!r})"

    def start(self) -> SandboxServer:
        self.runtime = SandboxRuntime(self.config)
        self.httpd = SandboxHTTPServer((self.config.host, self.config.port), self.runtime)
        host, port = self.httpd.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.info = self.runtime.info(f"http://{shown}:{port}")
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-http", daemon=True
        )
        self._thread.start()
        return self

    @property
    def api_base(self) -> str:
        return str(self.info["api_base"])

    @property
    def realm_id(self) -> str:
        return str(self.info["realm_id"])

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        if self.runtime is not None:
            self.runtime.close()

    def __enter__(self) -> SandboxServer:
        return self.start() if self.httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

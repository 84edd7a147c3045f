"""Every way a QBO call can fail, as exceptions that keep QBO's own error code.

Existing connectors report every failure as "code 0" or crash on an XML throttle body. Here the parser
reads JSON in either key case, XML, HTML and empty bodies, never raises, and always keeps a code that
exists (from the ``code`` field, an XML attribute or an ``errorCode=003200`` inside the message).
Messages are built from what the server said, bounded in length; the client scrubs known secrets from
them before raising (see :meth:`QBOError.scrub`).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_MAX_TEXT = 300


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class QBOError(Exception):
    """Base of every smartsync QBO error. Its ``str`` never contains a token or client secret."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def _text_fields(self) -> tuple[str, ...]:
        return ("message",)

    def scrub(self, *secrets: str | None) -> QBOError:
        """Replace every given secret in this error's texts with ``***`` (in place) and return self."""
        from smartsync_pipeline.qbo.secrets import redact  # local: secrets imports nothing of ours back

        for name in self._text_fields():
            value = getattr(self, name, None)
            if isinstance(value, str):
                setattr(self, name, redact(value, *secrets))
        self.args = (self.message,)
        return self


class QueryError(QBOError, ValueError):
    """A query or request the builder refused before sending anything (unknown entity, field,
    operator, or a value that cannot be rendered)."""


@dataclass(frozen=True)
class FaultEntry:
    """One entry of a QBO Fault's ``Error`` list."""

    code: str | None
    message: str
    detail: str
    element: str | None


class QBOFault(QBOError):
    """QBO answered with a Fault (or an HTTP error without one). Carries the first error's fields and
    all entries in ``errors``; ``attempts`` says how many requests were made before giving up."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        detail: str = "",
        element: str | None = None,
        fault_type: str | None = None,
        http_status: int | None = None,
        errors: tuple[FaultEntry, ...] = (),
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.detail = detail
        self.element = element
        self.fault_type = fault_type
        self.http_status = http_status
        self.errors = errors
        self.attempts = attempts
        self.retry_after = retry_after
        super().__init__(message)

    def _text_fields(self) -> tuple[str, ...]:
        return ("message", "detail")

    def scrub(self, *secrets: str | None) -> QBOError:
        from smartsync_pipeline.qbo.secrets import redact

        self.errors = tuple(
            FaultEntry(e.code, redact(e.message, *secrets), redact(e.detail, *secrets), e.element) for e in self.errors
        )
        return super().scrub(*secrets)

    def __str__(self) -> str:
        text = self.describe()
        return text + f" after {self.attempts} attempts" if self.attempts > 1 else text

    def describe(self) -> str:
        """The fault in one line, without the attempt count."""
        head = f"QBO fault {self.code}" if self.code else "QBO error"
        tags = [t for t in (self.fault_type, f"HTTP {self.http_status}" if self.http_status else None) if t]
        if tags:
            head += f" ({', '.join(tags)})"
        text = f"{head}: {self.message}"
        if self.detail and self.detail != self.message:
            text += f" — {self.detail}"
        if self.element:
            text += f" [element {self.element}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status!r}, "
            f"fault_type={self.fault_type!r}, message={self.message!r})"
        )

    def recast(self, cls: type[QBOFault]) -> QBOFault:
        """The same fault as a more specific class (e.g. a ValidationFault the caller knows is about
        the CDC window)."""
        return _rebuild_fault(cls, self.__dict__.copy())

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor: pickle (multiprocessing) must rebuild through __dict__.
        return (_rebuild_fault, (type(self), self.__dict__.copy()))


def _rebuild_fault(cls: type[QBOFault], state: dict[str, Any]) -> QBOFault:
    fault = cls.__new__(cls)
    Exception.__init__(fault, state.get("message", ""))
    fault.__dict__.update(state)
    return fault


class StaleObjectError(QBOFault):
    """Fault 5010: the SyncToken sent is not the object's current one; re-read and retry the edit."""


class ThrottledError(QBOFault):
    """HTTP 429 / fault 3001: the realm's request budget is spent."""


class AuthenticationError(QBOFault):
    """HTTP 401 / fault 3200 that persisted after one token refresh and one retry."""


class ValidationFault(QBOFault):
    """QBO rejected the request's content (fault type ValidationFault or HTTP 400)."""


class CDCWindowTooOldError(ValidationFault):
    """CDC ``changedSince`` lies more than 30 days back; run a full (query) sync instead."""


class ServerError(QBOFault):
    """HTTP 5xx: QBO (or something in front of it) failed."""


class ReauthorizationRequired(QBOError):
    """The refresh token was refused (``invalid_grant``): only a human can reconnect the company.
    Never retried."""

    def __init__(self, realm_id: str, reason: str = "the refresh token was rejected (invalid_grant)") -> None:
        self.realm_id = realm_id
        self.reason = reason
        super().__init__(
            f"QuickBooks company {realm_id} must be reconnected: {reason}. "
            f"Run `smartsync connect --realm {realm_id}` to authorize it again."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.realm_id, self.reason))


class TransportError(QBOError):
    """No HTTP answer: connection refused or reset, DNS failure, timeout."""


class EndpointRefused(TransportError):
    """The QBO endpoint refused the connection: nothing listens there, so retrying cannot help (unlike
    a 5xx). Raised at once, with what to do when the endpoint is the local sandbox."""

    def __init__(self, url: str) -> None:
        self.url = url
        message = f"the QBO endpoint {url} refused the connection"
        if _is_loopback(url):
            message += (
                "; it is on this machine, so it is the local sandbox, which is not running: start it with "
                "`smartsync sandbox start` (and check with `smartsync sandbox status`)"
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.url,))


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in {"localhost", "::1"} or host.startswith("127.")


def connection_refused(exc: BaseException) -> bool:
    """True when the server's host actively refused the TCP connection (ECONNREFUSED): no process
    listens on that port. Walks the chain requests and urllib3 wrap it in."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError):
            return True
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False


class RetriesExhausted(QBOError):
    """A retryable failure persisted through every attempt; ``last_error`` is the final one."""

    def __init__(self, last_error: QBOError, attempts: int) -> None:
        self.last_error = last_error
        self.attempts = attempts
        last = last_error.describe() if isinstance(last_error, QBOFault) else str(last_error)
        super().__init__(f"gave up after {attempts} attempts; last error: {last}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.last_error, self.attempts))

    def scrub(self, *secrets: str | None) -> QBOError:
        self.last_error.scrub(*secrets)
        return super().scrub(*secrets)


# ---------------------------------------------------------------------------------------------------
# Parsing fault bodies

_ERROR_CODE_IN_TEXT = re.compile(r"errorCode\s*=\s*0*(\d+)", re.IGNORECASE)
_XML_FAULT = re.compile(r"<(?:\w+:)?Fault\b([^>]*)>(.*?)</(?:\w+:)?Fault>", re.IGNORECASE | re.DOTALL)
_XML_ERROR = re.compile(r"<(?:\w+:)?Error\b([^>]*)>(.*?)</(?:\w+:)?Error>", re.IGNORECASE | re.DOTALL)
_XML_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _field(mapping: Mapping[str, Any], name: str) -> Any:
    """``mapping[name]`` matched case-insensitively (QBO mixes ``Fault``/``fault``)."""
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _code(value: Any, *texts: str) -> str | None:
    """The error code as a digit string without leading zeros; from the field, else from the texts."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int | float):
        value = str(int(value))
    if isinstance(value, str) and value.strip():
        stripped = value.strip()
        return (stripped.lstrip("0") or "0") if stripped.isdigit() else _clip(stripped, 40)
    for text in texts:
        found = _ERROR_CODE_IN_TEXT.search(text)
        if found:
            return found.group(1)
    return None


def _entry(message: Any, detail: Any, code: Any, element: Any) -> FaultEntry:
    msg, det = _clip(_text(message)), _clip(_text(detail))
    return FaultEntry(
        code=_code(code, msg, det),
        message=msg,
        detail=det,
        element=_clip(_text(element), 100) or None,
    )


def _json_fault(doc: Any) -> tuple[str | None, list[FaultEntry]] | None:
    """(fault type, entries) from a decoded JSON body, or None when it holds no fault."""
    if not isinstance(doc, Mapping):
        return None
    fault = _field(doc, "Fault")
    if fault is None:
        # Some gateways answer {"error": ..., "error_description": ...} or a bare {"Error": [...]}.
        bare = _field(doc, "Error")
        if bare is None:
            return None
        fault = {"Error": bare}
    if not isinstance(fault, Mapping):
        return None, [_entry(fault, "", None, None)]
    raw_errors = _field(fault, "Error")
    if isinstance(raw_errors, Mapping):
        raw_errors = [raw_errors]
    entries: list[FaultEntry] = []
    if isinstance(raw_errors, list):
        for item in raw_errors:
            if isinstance(item, Mapping):
                entries.append(
                    _entry(
                        _field(item, "Message"),
                        _field(item, "Detail"),
                        _field(item, "code"),
                        _field(item, "element"),
                    )
                )
            else:
                entries.append(_entry(item, "", None, None))
    elif raw_errors is not None:
        entries.append(_entry(raw_errors, _field(doc, "error_description"), None, None))
    fault_type = _field(fault, "type")
    return (_text(fault_type) or None), entries


def _xml_fault(text: str) -> tuple[str | None, list[FaultEntry]] | None:
    found = _XML_FAULT.search(text)
    if not found:
        return None
    attrs = {k.lower(): html.unescape(a or b) for k, a, b in _XML_ATTR.findall(found.group(1))}
    entries = []
    for attr_text, inner in _XML_ERROR.findall(found.group(2)):
        error_attrs = {k.lower(): html.unescape(a or b) for k, a, b in _XML_ATTR.findall(attr_text)}
        entries.append(
            _entry(
                _xml_child(inner, "Message"),
                _xml_child(inner, "Detail"),
                error_attrs.get("code"),
                error_attrs.get("element"),
            )
        )
    return attrs.get("type"), entries


def _xml_child(inner: str, tag: str) -> str:
    found = re.search(rf"<(?:\w+:)?{tag}\b[^>]*>(.*?)</(?:\w+:)?{tag}>", inner, re.IGNORECASE | re.DOTALL)
    return html.unescape(_TAGS.sub(" ", found.group(1))) if found else ""


def _plain_message(status: int, content_type: str, text: str) -> str:
    if not text.strip():
        return f"HTTP {status} with an empty body"
    title = _HTML_TITLE.search(text)
    if title:
        return f"HTTP {status}: {html.unescape(_clip(_TAGS.sub(' ', title.group(1))))}"
    if "html" in content_type or text.lstrip().startswith("<"):
        return f"HTTP {status}: {_clip(html.unescape(_TAGS.sub(' ', text)))}"
    return f"HTTP {status}: {_clip(text)}"


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    if not headers:
        return ""
    value = _field(headers, name)
    return value if isinstance(value, str) else ""


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """``Retry-After`` in seconds when it is a non-negative number (HTTP dates are ignored)."""
    raw = _header(headers, "Retry-After").strip()
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value >= 0 and value == value and value != float("inf") else None


def _fault_class(status: int, code: str | None, fault_type: str | None) -> type[QBOFault]:
    kind = (fault_type or "").lower()
    if code == "5010":
        return StaleObjectError
    if status == 429 or code == "3001":
        return ThrottledError
    if status == 401 or code in {"3200", "3100", "3202"} or kind.startswith("authentication"):
        return AuthenticationError
    if status >= 500:
        return ServerError
    if kind == "validationfault" or status == 400:
        return ValidationFault
    return QBOFault


def parse_fault(status: int, headers: Mapping[str, str] | None, body: bytes | None) -> QBOFault | None:
    """The fault in an HTTP answer, or None for a success. Never raises.

    A JSON ``Fault``/``fault`` is a fault even under HTTP 200; a non-2xx answer is always a fault, with
    whatever the body says (XML, HTML, text, nothing) as its message.
    """
    try:
        return _parse_fault(status, headers, body or b"")
    except Exception as exc:  # a parser bug must never hide the HTTP error itself
        if 200 <= status < 300:
            return None
        return _fault_class(status, None, None)(
            f"HTTP {status} (unreadable error body: {type(exc).__name__})", http_status=status
        )


def _parse_fault(status: int, headers: Mapping[str, str] | None, body: bytes) -> QBOFault | None:
    content_type = _header(headers, "Content-Type").lower()
    text = body.decode("utf-8", errors="replace")
    parsed: tuple[str | None, list[FaultEntry]] | None = None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            parsed = _json_fault(json.loads(text))
        except ValueError:
            parsed = None
    elif stripped.startswith("<"):
        parsed = _xml_fault(text)
    ok = 200 <= status < 300
    if parsed is None and ok:
        return None
    retry_after = retry_after_seconds(headers)
    if parsed is None or not parsed[1]:
        fault_type = parsed[0] if parsed else None
        if parsed is None:
            message, code = _plain_message(status, content_type, text), _code(None, text)
        else:
            message, code = f"HTTP {status}: a {fault_type or 'Fault'} without error entries", None
        return _fault_class(status, code, fault_type)(
            message, code=code, fault_type=fault_type, http_status=status, retry_after=retry_after
        )
    fault_type, entries = parsed
    first = entries[0]
    return _fault_class(status, first.code, fault_type)(
        first.message or first.detail or f"HTTP {status}",
        code=first.code,
        detail=first.detail,
        element=first.element,
        fault_type=fault_type,
        http_status=status,
        errors=tuple(entries),
        retry_after=retry_after,
    )


__all__ = [
    "AuthenticationError",
    "CDCWindowTooOldError",
    "FaultEntry",
    "QBOError",
    "QBOFault",
    "QueryError",
    "ReauthorizationRequired",
    "RetriesExhausted",
    "ServerError",
    "StaleObjectError",
    "ThrottledError",
    "TransportError",
    "ValidationFault",
    "parse_fault",
    "retry_after_seconds",
]

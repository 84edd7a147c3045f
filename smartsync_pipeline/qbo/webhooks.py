"""QBO webhook deliveries: check the signature, then turn the body into typed events.

Intuit signs the raw body (``intuit-signature`` = base64 HMAC-SHA256 with the app's verifier token) and
sends either the classic ``eventNotifications`` document or the newer CloudEvents form. Both become the
same ``WebhookEvent``; anything that is not exactly one of those shapes raises ``WebhookPayloadError``
with a one-line reason, never another exception, because the body comes from the network.

Unknown entity names (QBO entities smartsync does not mirror, e.g. ``Estimate``) are *skipped and
counted*, not rejected: Intuit batches several entities into one delivery and retries a rejected
delivery for days, so refusing the whole batch would also drop the events we do want.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smartsync_pipeline.entities import find_entity

MAX_BODY_BYTES = 1_048_576
OPERATIONS = ("Create", "Update", "Delete", "Merge", "Void", "Emailed")
# CloudEvents ``type`` verbs (``qbo.bill.updated.v1``) and the classic operation each one means.
_CLOUDEVENT_VERBS = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "merged": "Merge",
    "voided": "Void",
    "emailed": "Emailed",
}
_CLOUDEVENT_TYPE = re.compile(r"qbo\.([A-Za-z][A-Za-z0-9]{0,63})\.([A-Za-z]{1,32})\.v[0-9]{1,4}", re.ASCII)
_ENTITY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}", re.ASCII)
_REALM_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
_NUMERIC_ID = re.compile(r"[0-9]{1,32}", re.ASCII)
_TEXT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}", re.ASCII)
_MAX_EVENT_ID = 256
_SIGNATURE_BYTES = hashlib.sha256().digest_size


class WebhookPayloadError(ValueError):
    """The delivery is not a well-formed QBO webhook; ``str()`` is a short one-line reason."""


def verify_signature(verifier: str, body: bytes, signature_header: str | None) -> bool:
    """True when ``signature_header`` is base64(HMAC-SHA256(verifier, body)).

    Garbage (missing, not base64, wrong length, non-ASCII) is simply ``False``; the comparison is
    constant-time so the header cannot be guessed byte by byte. An empty verifier never verifies.
    """
    if not verifier or not signature_header or not isinstance(signature_header, str):
        return False
    try:
        provided = base64.b64decode(signature_header.strip().encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return False
    if len(provided) != _SIGNATURE_BYTES:
        return False
    try:
        key = verifier.encode("utf-8")
    except UnicodeEncodeError:
        return False
    expected = hmac.new(key, bytes(body), hashlib.sha256).digest()
    return hmac.compare_digest(expected, provided)


def sign_body(verifier: str, body: bytes) -> str:
    """The ``intuit-signature`` value Intuit would send for ``body`` (for tests and local tools)."""
    return base64.b64encode(hmac.new(verifier.encode("utf-8"), body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class WebhookEvent:
    """One changed QBO object named by a webhook: refresh ``entity`` in ``realm_id``."""

    realm_id: str
    entity: str  # registry name, e.g. "Bill"
    entity_id: str
    operation: str  # one of OPERATIONS
    last_updated: datetime | None = None  # always timezone-aware
    event_id: str | None = None  # the CloudEvents id; None for the classic form

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}")
        if self.last_updated is not None and self.last_updated.utcoffset() is None:
            raise ValueError("last_updated must be timezone-aware")

    @property
    def dedupe_key(self) -> str:
        """Identical for every redelivery of the same event.

        A CloudEvent carries its identity: redeliveries keep the ``id`` and distinct events never share
        one, so two changes of one object within the same second stay two events. The classic form has no
        id, so the change itself is the key (realm, entity, id, operation, ``lastUpdated`` in UTC); two
        identical operations on one object within ``lastUpdated``'s resolution (QBO sends whole seconds)
        are then one event, which still names the object to refresh.
        """
        if self.event_id is not None:
            parts: list[str | None] = ["event", self.realm_id, self.event_id]
        else:
            when = self.last_updated.astimezone(UTC).isoformat(timespec="microseconds") if self.last_updated else None
            parts = ["change", self.realm_id, self.entity, self.entity_id, self.operation, when]
        return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class WebhookBatch:
    """Everything one delivery said: the events to store and what was skipped."""

    format: str  # "classic" or "cloudevents"
    events: tuple[WebhookEvent, ...]
    skipped: int = 0  # events naming an entity smartsync does not mirror
    unknown_entities: tuple[str, ...] = field(default=())  # their distinct names, sorted


def parse_webhook(body: bytes) -> list[WebhookEvent]:
    """The events in a classic or CloudEvents delivery; raises ``WebhookPayloadError`` if malformed.

    Events for entities the registry does not know are left out (``parse_webhook_batch`` counts them).
    """
    return list(parse_webhook_batch(body).events)


def parse_webhook_batch(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> WebhookBatch:
    """Like ``parse_webhook`` but also reports events skipped for naming an unmirrored entity."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise WebhookPayloadError(f"body must be bytes, got {type(body).__name__}")
    if len(body) > max_bytes:
        raise WebhookPayloadError(f"body is {len(body)} bytes; the limit is {max_bytes}")
    try:
        document = json.loads(bytes(body).decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise WebhookPayloadError("body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise WebhookPayloadError(f"body is not JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise WebhookPayloadError("body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python's digit limit
        raise WebhookPayloadError(f"body is not acceptable JSON ({_first_line(exc)})") from None
    return _parse_document(document)


def _parse_document(document: Any) -> WebhookBatch:
    if isinstance(document, dict) and "eventNotifications" in document:
        return _parse_classic(document)
    if isinstance(document, dict) and "specversion" in document:
        return _collect("cloudevents", [_parse_cloudevent(document, "event")])
    if isinstance(document, list):
        return _collect("cloudevents", [_parse_cloudevent(item, f"[{i}]") for i, item in enumerate(document)])
    raise WebhookPayloadError(
        "not a QBO webhook: expected an object with 'eventNotifications', a CloudEvents object "
        "with 'specversion', or a JSON array of CloudEvents"
    )


_Parsed = WebhookEvent | str  # an event, or the name of an unknown entity that was skipped


def _collect(form: str, parsed: list[_Parsed]) -> WebhookBatch:
    events = tuple(p for p in parsed if isinstance(p, WebhookEvent))
    unknown = Counter(p for p in parsed if isinstance(p, str))
    return WebhookBatch(form, events, sum(unknown.values()), tuple(sorted(unknown)))


def _parse_classic(document: dict[str, Any]) -> WebhookBatch:
    notifications = _typed(document["eventNotifications"], list, "eventNotifications")
    parsed: list[_Parsed] = []
    for n, notification in enumerate(notifications):
        where = f"eventNotifications[{n}]"
        notification = _typed(notification, dict, where)
        realm_id = _realm_id(_required(notification, "realmId", where), f"{where}.realmId")
        change = _typed(_required(notification, "dataChangeEvent", where), dict, f"{where}.dataChangeEvent")
        entities = _typed(
            _required(change, "entities", f"{where}.dataChangeEvent"),
            list,
            f"{where}.dataChangeEvent.entities",
        )
        for e, item in enumerate(entities):
            at = f"{where}.dataChangeEvent.entities[{e}]"
            item = _typed(item, dict, at)
            name = _entity_name(_required(item, "name", at), f"{at}.name")
            operation = _typed(_required(item, "operation", at), str, f"{at}.operation")
            if operation not in OPERATIONS:
                raise WebhookPayloadError(
                    f"{at}.operation: expected one of {', '.join(OPERATIONS)}, got {_show(operation)}"
                )
            last_updated = _timestamp(_required(item, "lastUpdated", at), f"{at}.lastUpdated")
            spec = find_entity(name)
            if spec is None:
                _entity_id(_required(item, "id", at), f"{at}.id", numeric=False)
                parsed.append(name)
                continue
            entity_id = _entity_id(_required(item, "id", at), f"{at}.id", numeric=spec.numeric_ids)
            parsed.append(WebhookEvent(realm_id, spec.name, entity_id, operation, last_updated, None))
    return _collect("classic", parsed)


def _parse_cloudevent(event: Any, where: str) -> _Parsed:
    event = _typed(event, dict, where)
    version = _typed(_required(event, "specversion", where), str, f"{where}.specversion")
    if version != "1.0":
        raise WebhookPayloadError(f"{where}.specversion: expected '1.0', got {_show(version)}")
    event_id = _typed(_required(event, "id", where), str, f"{where}.id")
    if not event_id or len(event_id) > _MAX_EVENT_ID or not event_id.isprintable():
        raise WebhookPayloadError(f"{where}.id: expected 1-{_MAX_EVENT_ID} printable characters")
    kind = _typed(_required(event, "type", where), str, f"{where}.type")
    match = _CLOUDEVENT_TYPE.fullmatch(kind)
    if match is None:
        raise WebhookPayloadError(f"{where}.type: expected 'qbo.<entity>.<verb>.v<N>', got {_show(kind)}")
    name, verb = match.groups()
    operation = _CLOUDEVENT_VERBS.get(verb.lower())
    if operation is None:
        verbs = ", ".join(_CLOUDEVENT_VERBS)
        raise WebhookPayloadError(f"{where}.type: unknown operation {_show(verb)}; expected one of {verbs}")
    realm_id = _realm_id(_required(event, "intuitaccountid", where), f"{where}.intuitaccountid")
    raw_entity_id = _required(event, "intuitentityid", where)
    last_updated = _timestamp(event["time"], f"{where}.time") if event.get("time") is not None else None
    data = event.get("data")
    if data is not None and not isinstance(data, dict):
        raise WebhookPayloadError(f"{where}.data: expected an object, got {_kind(data)}")
    spec = find_entity(name)
    if spec is None:
        _entity_id(raw_entity_id, f"{where}.intuitentityid", numeric=False)
        return name
    entity_id = _entity_id(raw_entity_id, f"{where}.intuitentityid", numeric=spec.numeric_ids)
    return WebhookEvent(realm_id, spec.name, entity_id, operation, last_updated, event_id)


def _required(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise WebhookPayloadError(f"{where}: missing field {key!r}")
    return obj[key]


def _typed(value: Any, expected: type, where: str) -> Any:
    if not isinstance(value, expected):
        raise WebhookPayloadError(f"{where}: expected {_kind_name(expected)}, got {_kind(value)}")
    return value


def _entity_name(value: Any, where: str) -> str:
    name = _typed(value, str, where)
    if not _ENTITY_NAME.fullmatch(name):
        raise WebhookPayloadError(f"{where}: not an entity name: {_show(name)}")
    return name


def _realm_id(value: Any, where: str) -> str:
    realm = _typed(value, str, where)
    if not _REALM_ID.fullmatch(realm):
        raise WebhookPayloadError(f"{where}: not a realm id: {_show(realm)}")
    return realm


def _entity_id(value: Any, where: str, *, numeric: bool) -> str:
    entity_id = _typed(value, str, where)
    if not (_NUMERIC_ID if numeric else _TEXT_ID).fullmatch(entity_id):
        expected = "a string of digits" if numeric else "an id"
        raise WebhookPayloadError(f"{where}: expected {expected}, got {_show(entity_id)}")
    return entity_id


def _timestamp(value: Any, where: str) -> datetime:
    text = _typed(value, str, where)
    try:
        when = datetime.fromisoformat(text) if len(text) <= 64 else None
    except ValueError:
        when = None
    if when is None:
        raise WebhookPayloadError(f"{where}: not an ISO-8601 timestamp: {_show(text)}")
    if when.utcoffset() is None:
        raise WebhookPayloadError(f"{where}: timestamp has no UTC offset: {_show(text)}")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise WebhookPayloadError(f"{where}: timestamp out of range: {_show(text)}") from None


def _kind_name(expected: type) -> str:
    return {dict: "an object", list: "an array", str: "a string"}.get(expected, expected.__name__)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _kind_name(type(value))


def _show(text: str, limit: int = 40) -> str:
    """A short, single-line rendering of untrusted text for an error message."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]


__all__ = [
    "MAX_BODY_BYTES",
    "OPERATIONS",
    "WebhookBatch",
    "WebhookEvent",
    "WebhookPayloadError",
    "parse_webhook",
    "parse_webhook_batch",
    "sign_body",
    "verify_signature",
]

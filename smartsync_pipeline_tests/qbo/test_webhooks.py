"""Webhook signature and payload parsing: exact results for good input, ``WebhookPayloadError`` (and
nothing else) for anything a network peer could send."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.qbo import webhooks
from smartsync_pipeline.qbo.webhooks import (
    MAX_BODY_BYTES,
    OPERATIONS,
    WebhookEvent,
    WebhookPayloadError,
    parse_webhook,
    parse_webhook_batch,
    sign_body,
    verify_signature,
)

VERIFIER = "f2b1c7e0-verifier-token"
VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Merge": "merged", "Void": "voided"}
VERBS["Emailed"] = "emailed"


def classic(*entities: dict, realm: str = "9130355377") -> bytes:
    return json.dumps(
        {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": list(entities)}}]}
    ).encode()


def change(name: str = "Bill", id_: str = "145", op: str = "Update", when: str = "2026-11-26T10:00:00.000Z"):
    return {"name": name, "id": id_, "operation": op, "lastUpdated": when}


def cloudevent(**overrides) -> dict:
    event = {
        "specversion": "1.0",
        "id": "e7a1c0de-0001",
        "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
        "type": "qbo.bill.updated.v1",
        "datacontenttype": "application/json",
        "time": "2026-11-26T10:00:00.000Z",
        "intuitentityid": "145",
        "intuitaccountid": "9130355377",
        "data": {},
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def body_of(document) -> bytes:
    return json.dumps(document).encode()


# ---- signature ---------------------------------------------------------------------------------


def test_signature_matches_intuits_definition() -> None:
    body = classic(change())
    header = base64.b64encode(hmac.new(VERIFIER.encode(), body, hashlib.sha256).digest()).decode()
    assert sign_body(VERIFIER, body) == header
    assert verify_signature(VERIFIER, body, header) is True
    assert verify_signature(VERIFIER, body, f"  {header}\t") is True  # header whitespace is not the signature


def test_signature_fails_for_other_body_or_verifier() -> None:
    body = classic(change())
    header = sign_body(VERIFIER, body)
    assert verify_signature(VERIFIER, body + b" ", header) is False
    assert verify_signature(VERIFIER, classic(change(id_="146")), header) is False
    assert verify_signature(VERIFIER + "x", body, header) is False
    assert verify_signature("", body, sign_body("", body)) is False  # an empty verifier never verifies


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "not base64 at all!",
        "====",
        "abc",  # bad padding
        "é" * 44,  # non-ASCII
        base64.b64encode(b"x" * 31).decode(),  # right alphabet, wrong length
        base64.b64encode(b"x" * 33).decode(),
        base64.b64encode(b"\0" * 32).decode(),  # right length, wrong value
        base64.urlsafe_b64encode(b"\xff" * 32).decode(),  # url-safe alphabet is not what Intuit sends
        "\x00\n\r",
    ],
)
def test_garbage_signature_headers_are_false(header: str | None) -> None:
    assert verify_signature(VERIFIER, classic(change()), header) is False


@given(
    header=st.one_of(
        st.none(), st.text(max_size=200), st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
    )
)
@settings(max_examples=300, deadline=None)
def test_verify_signature_never_raises(header: str | None) -> None:
    assert verify_signature(VERIFIER, b'{"eventNotifications": []}', header) is False


# ---- classic form ------------------------------------------------------------------------------


def test_classic_form_parses_every_entity_and_notification() -> None:
    body = body_of(
        {
            "eventNotifications": [
                {
                    "realmId": "111",
                    "dataChangeEvent": {
                        "entities": [
                            change("Bill", "145", "Update", "2026-11-26T10:00:00.000Z"),
                            change("Invoice", "7", "Create", "2026-11-26T02:00:00-08:00"),
                        ]
                    },
                },
                {"realmId": "222", "dataChangeEvent": {"entities": [change("Vendor", "56", "Merge")]}},
            ]
        }
    )
    events = parse_webhook(body)
    assert events == [
        WebhookEvent("111", "Bill", "145", "Update", datetime(2026, 11, 26, 10, tzinfo=UTC), None),
        WebhookEvent("111", "Invoice", "7", "Create", datetime(2026, 11, 26, 10, tzinfo=UTC), None),
        WebhookEvent("222", "Vendor", "56", "Merge", datetime(2026, 11, 26, 10, tzinfo=UTC), None),
    ]
    assert all(e.last_updated.utcoffset() == timedelta(0) for e in events)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_classic_accepts_every_operation(operation: str) -> None:
    [event] = parse_webhook(classic(change("Invoice", "3", operation)))
    assert event.operation == operation


def test_entity_names_are_validated_against_the_registry() -> None:
    [event] = parse_webhook(classic(change("billpayment")))
    assert event.entity == "BillPayment"  # the registry's spelling, whatever case Intuit used


def test_unknown_entities_are_skipped_and_counted_not_rejected() -> None:
    # JournalCode and ExchangeRate are QBO entities smartsync does not mirror (the registry has the other 33)
    body = classic(
        change("JournalCode", "1"), change("Bill", "2"), change("ExchangeRate", "3"), change("JournalCode", "4")
    )
    batch = parse_webhook_batch(body)
    assert [(e.entity, e.entity_id) for e in batch.events] == [("Bill", "2")]
    assert batch.skipped == 3
    assert batch.unknown_entities == ("ExchangeRate", "JournalCode")
    assert batch.format == "classic"


def test_empty_notification_list_is_valid_and_empty() -> None:
    assert parse_webhook(b'{"eventNotifications": []}') == []


# ---- CloudEvents form --------------------------------------------------------------------------


def test_cloudevent_single_object() -> None:
    [event] = parse_webhook(body_of(cloudevent()))
    assert event == WebhookEvent(
        "9130355377", "Bill", "145", "Update", datetime(2026, 11, 26, 10, tzinfo=UTC), "e7a1c0de-0001"
    )


def test_cloudevent_array_keeps_order() -> None:
    body = body_of(
        [
            cloudevent(id="a", type="qbo.invoice.created.v1", intuitentityid="1"),
            cloudevent(id="b", type="qbo.billpayment.voided.v1", intuitentityid="2", data=...),
            cloudevent(id="c", type="qbo.customer.merged.v2", intuitentityid="3", time=...),
        ]
    )
    batch = parse_webhook_batch(body)
    assert batch.format == "cloudevents"
    assert [(e.event_id, e.entity, e.entity_id, e.operation) for e in batch.events] == [
        ("a", "Invoice", "1", "Create"),
        ("b", "BillPayment", "2", "Void"),
        ("c", "Customer", "3", "Merge"),
    ]
    assert batch.events[2].last_updated is None


@pytest.mark.parametrize(("operation", "verb"), sorted(VERBS.items()))
def test_cloudevent_verbs_map_to_operations(operation: str, verb: str) -> None:
    [event] = parse_webhook(body_of(cloudevent(type=f"qbo.invoice.{verb}.v1")))
    assert event.operation == operation


def test_cloudevent_unknown_entity_is_skipped() -> None:
    batch = parse_webhook_batch(body_of([cloudevent(type="qbo.journalcode.created.v1"), cloudevent(id="2")]))
    assert [e.event_id for e in batch.events] == ["2"]
    assert (batch.skipped, batch.unknown_entities) == (1, ("journalcode",))


# ---- dedupe key --------------------------------------------------------------------------------


def test_classic_dedupe_key_is_the_change() -> None:
    first = parse_webhook(classic(change()))[0]
    again = parse_webhook(classic(change(when="2026-11-26T02:00:00-08:00")))[0]  # same instant, other offset
    assert first.dedupe_key == again.dedupe_key
    assert first.dedupe_key == parse_webhook(classic(change(), change(id_="9")))[0].dedupe_key  # re-batched
    assert len(first.dedupe_key) == 64


def test_dedupe_key_differs_for_different_changes() -> None:
    base = parse_webhook(classic(change()))[0]
    others = [
        parse_webhook(classic(change(when="2026-11-26T10:00:00.001Z")))[0],
        parse_webhook(classic(change(op="Delete")))[0],
        parse_webhook(classic(change(id_="146")))[0],
        parse_webhook(classic(change(name="Invoice")))[0],
        parse_webhook(classic(change(), realm="42"))[0],
    ]
    keys = {base.dedupe_key, *(o.dedupe_key for o in others)}
    assert len(keys) == 6


def test_cloudevent_dedupe_key_is_its_id() -> None:
    a = parse_webhook(body_of(cloudevent(id="x1")))[0]
    a_again = parse_webhook(body_of([cloudevent(id="x2"), cloudevent(id="x1", time=...)]))[1]
    b = parse_webhook(body_of(cloudevent(id="x2")))[0]  # the same change as a, but another event
    assert a.dedupe_key == a_again.dedupe_key
    assert a.dedupe_key != b.dedupe_key
    other_realm = parse_webhook(body_of(cloudevent(id="x1", intuitaccountid="42")))[0]
    assert a.dedupe_key != other_realm.dedupe_key


def test_event_rejects_unknown_operation_and_naive_time() -> None:
    with pytest.raises(ValueError, match="operation"):
        WebhookEvent("1", "Bill", "1", "Upsert")
    with pytest.raises(ValueError, match="timezone"):
        WebhookEvent("1", "Bill", "1", "Update", datetime(2026, 1, 1))


# ---- malformed ---------------------------------------------------------------------------------


def without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


MALFORMED = [
    (b"", "not JSON"),
    (b"not json", "not JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b'{"eventNotifications": [}', "not JSON"),
    (b"null", "not a QBO webhook"),
    (b"42", "not a QBO webhook"),
    (b'"eventNotifications"', "not a QBO webhook"),
    (b"{}", "not a QBO webhook"),
    (b'{"eventnotifications": []}', "not a QBO webhook"),
    (b'{"eventNotifications": {}}', "eventNotifications: expected an array, got an object"),
    (b'{"eventNotifications": [7]}', "eventNotifications[0]: expected an object, got a number"),
    (body_of({"eventNotifications": [{"dataChangeEvent": {"entities": []}}]}), "missing field 'realmId'"),
    (
        body_of({"eventNotifications": [{"realmId": 123, "dataChangeEvent": {"entities": []}}]}),
        "realmId: expected a string, got a number",
    ),
    (
        body_of({"eventNotifications": [{"realmId": "1 OR 1", "dataChangeEvent": {"entities": []}}]}),
        "not a realm id",
    ),
    (body_of({"eventNotifications": [{"realmId": "1"}]}), "missing field 'dataChangeEvent'"),
    (
        body_of({"eventNotifications": [{"realmId": "1", "dataChangeEvent": []}]}),
        "dataChangeEvent: expected an object",
    ),
    (body_of({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {}}]}), "missing field 'entities'"),
    (
        body_of({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": None}}]}),
        "entities: expected an array, got null",
    ),
    (classic("Bill"), "entities[0]: expected an object, got a string"),
    (classic(without(change(), "name")), "missing field 'name'"),
    (classic(without(change(), "id")), "missing field 'id'"),
    (classic(without(change(), "operation")), "missing field 'operation'"),
    (classic(without(change(), "lastUpdated")), "missing field 'lastUpdated'"),
    (
        classic(change(op="Upsert")),
        "operation: expected one of Create, Update, Delete, Merge, Void, Emailed, got 'Upsert'",
    ),
    (classic(change(op="update")), "operation: expected one of"),
    (classic({**change(), "operation": True}), "operation: expected a string, got a boolean"),
    (classic({**change(), "id": 145}), "id: expected a string, got a number"),
    (classic(change(id_="abc")), "id: expected a string of digits, got 'abc'"),
    (classic(change(id_="")), "id: expected a string of digits"),
    (classic(change(id_="١٢")), "id: expected a string of digits"),  # non-ASCII digits
    (classic(change(name="Bill; DROP TABLE")), "not an entity name"),
    (classic({**change(), "name": ["Bill"]}), "name: expected a string, got an array"),
    (classic(change(when="yesterday")), "lastUpdated: not an ISO-8601 timestamp: 'yesterday'"),
    (classic(change(when="2026-11-26T10:00:00")), "lastUpdated: timestamp has no UTC offset"),
    (classic(change(when="2026-13-40T10:00:00Z")), "not an ISO-8601 timestamp"),
    (classic(change(when="0001-01-01T00:00:00+05:00")), "timestamp out of range"),
    (classic({**change(), "lastUpdated": 1764151200}), "lastUpdated: expected a string, got a number"),
    (b"[1]", "[0]: expected an object, got a number"),
    (body_of([cloudevent(), {"id": "2"}]), "[1]: missing field 'specversion'"),
    (body_of(cloudevent(specversion="0.3")), "specversion: expected '1.0', got '0.3'"),
    (body_of(cloudevent(specversion=1.0)), "specversion: expected a string, got a number"),
    (body_of(cloudevent(id=...)), "missing field 'id'"),
    (body_of(cloudevent(id="")), "id: expected 1-256 printable characters"),
    (body_of(cloudevent(id="a\nb")), "id: expected 1-256 printable characters"),
    (body_of(cloudevent(type=...)), "missing field 'type'"),
    (
        body_of(cloudevent(type="bill.updated")),
        "type: expected 'qbo.<entity>.<verb>.v<N>', got 'bill.updated'",
    ),
    (body_of(cloudevent(type="qbo.bill.archived.v1")), "unknown operation 'archived'"),
    (body_of(cloudevent(intuitaccountid=...)), "missing field 'intuitaccountid'"),
    (body_of(cloudevent(intuitaccountid=9130355377)), "intuitaccountid: expected a string, got a number"),
    (body_of(cloudevent(intuitentityid=...)), "missing field 'intuitentityid'"),
    (body_of(cloudevent(intuitentityid="x-1")), "intuitentityid: expected a string of digits"),
    (body_of(cloudevent(time="soon")), "time: not an ISO-8601 timestamp"),
    (body_of(cloudevent(time=17)), "time: expected a string, got a number"),
    (body_of(cloudevent(data=[1, 2])), "data: expected an object, got an array"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"eventNotifications": [' + b"9" * 5000 + b"]}", "not acceptable JSON"),
]


@pytest.mark.parametrize(("body", "reason"), MALFORMED, ids=[f"malformed-{i}" for i in range(len(MALFORMED))])
def test_malformed_bodies_raise_a_clear_one_line_reason(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(body)
    message = str(caught.value)
    assert reason in message
    assert "\n" not in message
    assert len(message) < 300
    assert isinstance(caught.value, ValueError)


def test_body_over_the_limit_is_refused_before_parsing() -> None:
    events = [change(id_=str(i)) for i in range(20_000)]
    body = classic(*events)
    assert len(body) > MAX_BODY_BYTES
    with pytest.raises(WebhookPayloadError, match=f"the limit is {MAX_BODY_BYTES}"):
        parse_webhook(body)
    assert len(parse_webhook_batch(body, max_bytes=len(body)).events) == 20_000


def test_non_bytes_body_is_a_payload_error() -> None:
    with pytest.raises(WebhookPayloadError, match="body must be bytes"):
        parse_webhook("{}")  # type: ignore[arg-type]


# ---- properties --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=5),
    max_leaves=30,
)
mirrored = st.sampled_from([e.name for e in ENTITIES])
digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
aware_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30))]),
)


def parses_or_refuses(body: bytes) -> None:
    try:
        result = parse_webhook(body)
    except WebhookPayloadError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(result, list)
        assert all(isinstance(e, WebhookEvent) for e in result)


@given(st.binary(max_size=2048))
@settings(max_examples=400, deadline=None)
def test_random_bytes_never_raise_anything_else(body: bytes) -> None:
    parses_or_refuses(body)


@given(json_values)
@settings(max_examples=150, deadline=None)
def test_random_json_never_raises_anything_else(document) -> None:
    parses_or_refuses(body_of(document))
    parses_or_refuses(body_of({"eventNotifications": document}))
    parses_or_refuses(body_of({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": document}}]}))
    parses_or_refuses(body_of([{"specversion": "1.0", "id": "1", "type": document}]))


@st.composite
def valid_deliveries(draw) -> tuple[bytes, list[WebhookEvent]]:
    """A random valid delivery in either form and the events it must parse into."""
    items = draw(
        st.lists(
            st.tuples(digits, mirrored, digits, st.sampled_from(OPERATIONS), aware_times),
            min_size=1,
            max_size=8,
        )
    )
    expected = []
    if draw(st.booleans()):
        notifications = [
            {
                "realmId": realm,
                "dataChangeEvent": {"entities": [{"name": n, "id": i, "operation": op, "lastUpdated": t.isoformat()}]},
            }
            for realm, n, i, op, t in items
        ]
        body = body_of({"eventNotifications": notifications})
        expected = [WebhookEvent(r, n, i, op, t.astimezone(UTC), None) for r, n, i, op, t in items]
    else:
        events = [
            {
                "specversion": "1.0",
                "id": f"ev-{k}",
                "type": f"qbo.{n.lower()}.{VERBS[op]}.v1",
                "intuitentityid": i,
                "intuitaccountid": realm,
                "time": t.isoformat(),
            }
            for k, (realm, n, i, op, t) in enumerate(items)
        ]
        body = body_of(events)
        expected = [WebhookEvent(r, n, i, op, t.astimezone(UTC), f"ev-{k}") for k, (r, n, i, op, t) in enumerate(items)]
    return body, expected


@given(valid_deliveries())
@settings(max_examples=100, deadline=None)
def test_valid_deliveries_parse_exactly(delivery) -> None:
    body, expected = delivery
    assert parse_webhook(body) == expected


@given(valid_deliveries(), st.data())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_truncated_valid_bodies_are_payload_errors(delivery, data) -> None:
    body, _ = delivery
    cut = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    with pytest.raises(WebhookPayloadError):
        parse_webhook(body[:cut])


CLASSIC_FIELDS = {
    # path into a one-entity classic document -> the JSON type it must have
    ("eventNotifications",): list,
    ("eventNotifications", 0): dict,
    ("eventNotifications", 0, "realmId"): str,
    ("eventNotifications", 0, "dataChangeEvent"): dict,
    ("eventNotifications", 0, "dataChangeEvent", "entities"): list,
    ("eventNotifications", 0, "dataChangeEvent", "entities", 0): dict,
    ("eventNotifications", 0, "dataChangeEvent", "entities", 0, "name"): str,
    ("eventNotifications", 0, "dataChangeEvent", "entities", 0, "id"): str,
    ("eventNotifications", 0, "dataChangeEvent", "entities", 0, "operation"): str,
    ("eventNotifications", 0, "dataChangeEvent", "entities", 0, "lastUpdated"): str,
}


def json_type(value) -> type:
    return {bool: bool, int: float, float: float}.get(type(value), type(value))


@given(st.sampled_from(sorted(CLASSIC_FIELDS, key=len)), json_values)
@settings(max_examples=150, deadline=None)
def test_wrong_types_anywhere_are_payload_errors(path, replacement) -> None:
    if json_type(replacement) is CLASSIC_FIELDS[path]:
        replacement = 12.5  # no field is a number, so this is always the wrong type
    document = json.loads(classic(change()))
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    with pytest.raises(WebhookPayloadError):
        parse_webhook(body_of(document))


@given(
    st.integers(min_value=MAX_BODY_BYTES + 1, max_value=8 * MAX_BODY_BYTES),
    st.sampled_from([b" ", b"[", b"9", b"\xff"]),
)
@settings(max_examples=20, deadline=None)
def test_huge_payloads_are_payload_errors(size: int, filler: bytes) -> None:
    with pytest.raises(WebhookPayloadError, match="the limit is"):
        parse_webhook(filler * size)


@given(st.integers(min_value=1, max_value=400_000), st.sampled_from([b"[", b'{"a":']))
@settings(max_examples=30, deadline=None)
def test_deep_or_long_bodies_under_the_limit_are_payload_errors(size: int, opener: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_webhook(opener * (size // len(opener)))


# ---- layer rule ----------------------------------------------------------------------------------


def test_webhooks_module_imports_only_stdlib_and_entities() -> None:
    tree = ast.parse(Path(webhooks.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    outside = {
        m
        for m in imported
        if m.split(".")[0] not in sys.stdlib_module_names
        and m != "__future__"
        and not m.startswith("smartsync_pipeline.entities")
    }
    assert outside == set()


def test_the_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reliability brief, part 3: the only comparison of the expected and the given signature is
    ``hmac.compare_digest`` (a spy sees every call), never ``==`` in the code path."""
    import inspect

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhooks.hmac, "compare_digest", spy)
    body = b'{"eventNotifications": []}'
    good = webhooks.sign_body("verifier-token", body)
    bad = webhooks.sign_body("another-token", body)
    assert webhooks.verify_signature("verifier-token", body, good)
    assert not webhooks.verify_signature("verifier-token", body, bad)
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)
    source = inspect.getsource(webhooks.verify_signature)
    assert "compare_digest(" in source and "== provided" not in source and "provided ==" not in source

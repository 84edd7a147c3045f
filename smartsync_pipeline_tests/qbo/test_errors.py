"""The fault parser on literal bodies as QBO (and whatever stands in front of it) sends them."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartsync_pipeline.qbo.errors import (
    AuthenticationError,
    CDCWindowTooOldError,
    FaultEntry,
    QBOError,
    QBOFault,
    ReauthorizationRequired,
    RetriesExhausted,
    ServerError,
    StaleObjectError,
    ThrottledError,
    ValidationFault,
    parse_fault,
    retry_after_seconds,
)

JSON = {"Content-Type": "application/json"}


def test_validation_fault_keeps_every_field_and_entry() -> None:
    body = (
        b'{"Fault":{"Error":[{"Message":"Required param missing","Detail":"VendorRef is required",'
        b'"code":"2020","element":"VendorRef"},{"Message":"Second","Detail":"d2","code":"6000"}],'
        b'"type":"ValidationFault"},"time":"2026-11-26T10:00:00.000-08:00"}'
    )
    fault = parse_fault(400, JSON, body)
    assert isinstance(fault, ValidationFault)
    assert (fault.code, fault.message, fault.detail, fault.element) == (
        "2020",
        "Required param missing",
        "VendorRef is required",
        "VendorRef",
    )
    assert fault.fault_type == "ValidationFault"
    assert fault.http_status == 400
    assert [e.code for e in fault.errors] == ["2020", "6000"]
    assert "2020" in str(fault) and "VendorRef is required" in str(fault)


def test_lower_case_401_body() -> None:
    body = (
        b'{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401",'
        b'"detail":"Token expired","code":"3200"}],"type":"AUTHENTICATION"},"time":"2026-11-26T10:00:00Z"}'
    )
    fault = parse_fault(401, JSON, body)
    assert isinstance(fault, AuthenticationError)
    assert fault.code == "3200"
    assert fault.detail == "Token expired"
    assert fault.fault_type == "AUTHENTICATION"


def test_code_is_taken_from_the_message_when_the_field_is_missing() -> None:
    body = b'{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401"}]}}'
    fault = parse_fault(401, JSON, body)
    assert fault is not None and fault.code == "3200"


def test_numeric_code_and_single_error_object() -> None:
    fault = parse_fault(400, JSON, b'{"Fault":{"Error":{"Message":"Stale","code":5010},"type":"ValidationFault"}}')
    assert isinstance(fault, StaleObjectError)
    assert fault.code == "5010"


def test_stale_object_5010() -> None:
    body = (
        b'{"Fault":{"Error":[{"Message":"Stale Object Error","Detail":"Stale Object Error : You and '
        b'root were working on this at the same time.","code":"5010"}],"type":"ValidationFault"}}'
    )
    fault = parse_fault(400, JSON, body)
    assert isinstance(fault, StaleObjectError)
    assert isinstance(fault, QBOFault)


def test_json_throttle_with_retry_after() -> None:
    body = (
        b'{"Fault":{"Error":[{"Message":"message=ThrottleExceeded; errorCode=003001; statusCode=429",'
        b'"Detail":"The request limit was reached.","code":"3001"}],"type":"SERVICE"}}'
    )
    fault = parse_fault(429, {"content-type": "application/json", "retry-after": "7"}, body)
    assert isinstance(fault, ThrottledError)
    assert fault.code == "3001"
    assert fault.retry_after == 7.0


def test_xml_throttle_body() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2026-11-26T10:00:00.000-08:00">
  <Fault type="SERVICE">
    <Error code="3001">
      <Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>
      <Detail>The request limit was reached &amp; more.</Detail>
    </Error>
  </Fault>
</IntuitResponse>"""
    fault = parse_fault(429, {"Content-Type": "text/xml"}, body)
    assert isinstance(fault, ThrottledError)
    assert fault.code == "3001"
    assert fault.fault_type == "SERVICE"
    assert fault.detail == "The request limit was reached & more."


def test_xml_fault_under_http_200_is_a_fault() -> None:
    body = (
        b'<IntuitResponse><Fault type="SystemFault"><Error code="10000">'
        b"<Message>An application error</Message></Error></Fault></IntuitResponse>"
    )
    fault = parse_fault(200, {"Content-Type": "application/xml"}, body)
    assert fault is not None
    assert fault.code == "10000"
    assert fault.http_status == 200


def test_json_fault_under_http_200_is_a_fault() -> None:
    body = b'{"Fault":{"Error":[{"Message":"Business Validation Error","code":"6240"}],"type":"ValidationFault"}}'
    fault = parse_fault(200, JSON, body)
    assert isinstance(fault, ValidationFault)
    assert fault.code == "6240"
    assert fault.http_status == 200


def test_html_503() -> None:
    body = b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><h1>503</h1></body></html>"
    fault = parse_fault(503, {"Content-Type": "text/html"}, body)
    assert isinstance(fault, ServerError)
    assert fault.code is None
    assert "503 Service Temporarily Unavailable" in fault.message


@pytest.mark.parametrize("body", [b"", None, b"   "])
def test_empty_error_body(body: bytes | None) -> None:
    fault = parse_fault(502, {}, body)
    assert isinstance(fault, ServerError)
    assert "empty body" in fault.message


def test_success_bodies_are_not_faults() -> None:
    assert parse_fault(200, JSON, b'{"QueryResponse":{},"time":"2026-11-26T10:00:00Z"}') is None
    assert parse_fault(200, JSON, b"") is None
    assert parse_fault(200, {"Content-Type": "text/html"}, b"<html>ok</html>") is None


def test_truncated_json_error_still_reports_the_status() -> None:
    fault = parse_fault(500, JSON, b'{"Fault":{"Error":[{"Message":"Int')
    assert isinstance(fault, ServerError)
    assert fault.http_status == 500


def test_plain_text_with_an_error_code() -> None:
    fault = parse_fault(401, {"Content-Type": "text/plain"}, b"message=AuthenticationFailed; errorCode=003200")
    assert isinstance(fault, AuthenticationError)
    assert fault.code == "3200"


def test_fault_without_entries() -> None:
    fault = parse_fault(500, JSON, b'{"Fault":{"type":"SystemFault"}}')
    assert isinstance(fault, ServerError)
    assert "SystemFault" in fault.message


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "0.5"}) == 0.5
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after_seconds({"Retry-After": "-1"}) is None
    assert retry_after_seconds({"Retry-After": "nan"}) is None
    assert retry_after_seconds({}) is None


def test_reauthorization_message_names_company_and_command() -> None:
    error = ReauthorizationRequired("9130355")
    assert "9130355" in str(error)
    assert "smartsync connect" in str(error)
    assert "invalid_grant" in str(error)


def test_retries_exhausted_says_how_many_attempts() -> None:
    last = ServerError("HTTP 503", http_status=503, attempts=6)
    error = RetriesExhausted(last, 6)
    assert "6 attempts" in str(error)
    assert error.last_error is last


def test_scrub_removes_secrets_from_every_text() -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9.secret-token-value"
    entry = FaultEntry("3200", f"bad token {secret}", f"Bearer {secret}", None)
    fault = QBOFault(f"bad token {secret}", detail=f"Bearer {secret}", http_status=401, errors=(entry,))
    fault.scrub(secret)
    assert secret not in str(fault) and secret not in repr(fault)
    assert secret not in fault.detail
    assert secret not in repr(fault.errors)
    wrapped = RetriesExhausted(QBOFault(f"x {secret}", http_status=503), 3).scrub(secret)
    assert secret not in str(wrapped) and secret not in str(wrapped.last_error)


def test_errors_survive_pickling() -> None:
    fault = parse_fault(400, JSON, b'{"Fault":{"Error":[{"Message":"m","code":"5010"}]}}')
    assert fault is not None
    fault.attempts = 3
    copy = pickle.loads(pickle.dumps(fault))
    assert type(copy) is StaleObjectError and copy.code == "5010" and copy.attempts == 3
    again = pickle.loads(pickle.dumps(ReauthorizationRequired("123")))
    assert again.realm_id == "123"
    cdc = fault.recast(CDCWindowTooOldError)
    assert isinstance(cdc, ValidationFault) and cdc.code == "5010"


@settings(max_examples=300, deadline=None)
@given(status=st.sampled_from([200, 201, 400, 401, 403, 404, 429, 500, 502, 503]), body=st.binary(max_size=300))
def test_parser_never_raises_on_garbage(status: int, body: bytes) -> None:
    fault = parse_fault(status, {"Content-Type": "application/json"}, body)
    if status >= 400:
        assert isinstance(fault, QBOFault)
        assert fault.http_status == status
        assert fault.code != "0"
    assert fault is None or isinstance(fault, QBOError)


@settings(max_examples=200, deadline=None)
@given(
    code=st.from_regex(r"[1-9][0-9]{2,4}", fullmatch=True),
    key_case=st.sampled_from(["upper", "lower"]),
    status=st.sampled_from([200, 400, 401, 429, 500]),
)
def test_an_existing_code_is_always_reported(code: str, key_case: str, status: int) -> None:
    if key_case == "upper":
        body = f'{{"Fault":{{"Error":[{{"Message":"m","code":"{code}"}}],"type":"X"}}}}'
    else:
        body = f'{{"fault":{{"error":[{{"message":"m","code":"{code}"}}],"type":"X"}}}}'
    fault = parse_fault(status, JSON, body.encode())
    assert fault is not None and fault.code == code

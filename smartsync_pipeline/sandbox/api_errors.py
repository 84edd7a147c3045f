"""QBO's error bodies, byte-compatible with what clients parse.

``ApiFault`` is raised anywhere below the HTTP layer; the server turns it into the QBO Fault JSON
(``{"Fault": {"Error": [...], "type": ...}, "time": ...}``) with its HTTP status. Authentication
and throttling have their own shapes (lower-case keys, SERVICE faults, optional XML).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smartsync_pipeline.sandbox.qbo_time import iso_millis

# Codes used by the sandbox (QBO's where known; see the report for the ones that are our choice).
QUERY_PARSE = "4000"
REQUIRED_MISSING = "2020"
INVALID_VALUE = "2010"
INVALID_REFERENCE = "2500"
DUPLICATE_NAME = "6240"
BUSINESS_VALIDATION = "6000"
STALE_OBJECT = "5010"
OBJECT_NOT_FOUND = "610"
UNSUPPORTED_OPERATION = "500"
CDC_TOO_OLD = "4000"
MINOR_VERSION = "2010"


@dataclass
class ApiFault(Exception):
    """A QBO Fault to send back: HTTP status, fault type and one error."""

    status: int
    code: str
    message: str
    detail: str = ""
    element: str | None = None
    fault_type: str = "ValidationFault"

    def __str__(self) -> str:
        return f"{self.fault_type} {self.code}: {self.message} ({self.detail})"

    def body(self, now: float) -> dict[str, Any]:
        error: dict[str, Any] = {"Message": self.message, "Detail": self.detail or self.message, "code": self.code}
        if self.element is not None:
            error["element"] = self.element
        return {"Fault": {"Error": [error], "type": self.fault_type}, "time": iso_millis(now)}


def validation(code: str, message: str, detail: str = "", element: str | None = None) -> ApiFault:
    return ApiFault(400, code, message, detail, element)


def business(detail: str, element: str | None = None) -> ApiFault:
    """QBO's 6000: the request is well formed but breaks a bookkeeping rule."""
    return validation(
        BUSINESS_VALIDATION, "A business validation error has occurred while processing your request", detail, element
    )


def stale_object(entity: str, object_id: str, sent: str, current: str) -> ApiFault:
    return ApiFault(
        400,
        STALE_OBJECT,
        "Stale Object Error",
        f"Stale Object Error : You and {entity} Id {object_id} are working on the same object. "
        f"SyncToken {sent!r} is not the current SyncToken {current!r}; read the object again.",
        element="SyncToken",
    )


def not_found(entity: str, object_id: str) -> ApiFault:
    return ApiFault(
        400,
        OBJECT_NOT_FOUND,
        "Object Not Found",
        f"Object Not Found : {entity} with Id {object_id} does not exist or has been deleted.",
        element="Id",
    )


def authentication_body(detail: str, now: float) -> dict[str, Any]:
    """The 401 body with QBO's lower-case keys."""
    return {
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": detail,
                    "code": "3200",
                }
            ],
            "type": "AUTHENTICATION",
        },
        "time": iso_millis(now),
    }


THROTTLE_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"
THROTTLE_DETAIL = "The request limit was reached."


def throttle_body(now: float) -> dict[str, Any]:
    return {
        "Fault": {
            "Error": [{"Message": THROTTLE_MESSAGE, "Detail": THROTTLE_DETAIL, "code": "3001"}],
            "type": "SERVICE",
        },
        "time": iso_millis(now),
    }


def throttle_xml(now: float) -> bytes:
    """The XML throttle body some clients have received even when asking for JSON."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{iso_millis(now)}">'
        f'<Fault type="SERVICE"><Error code="3001"><Message>{THROTTLE_MESSAGE}</Message>'
        f"<Detail>{THROTTLE_DETAIL}</Detail></Error></Fault></IntuitResponse>"
    ).encode()


def server_error_body(status: int, now: float) -> dict[str, Any]:
    return {
        "Fault": {
            "Error": [
                {
                    "Message": "An application error has occurred while processing your request",
                    "Detail": f"System Failure Error: injected HTTP {status}",
                    "code": "10000",
                }
            ],
            "type": "SystemFault",
        },
        "time": iso_millis(now),
    }


def server_error_html(status: int) -> bytes:
    """What a load balancer in front of QBO sends on a bad day."""
    reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
    return (
        f"<!DOCTYPE html><html><head><title>{status} {reason}</title></head>"
        f"<body><h1>{status} {reason}</h1><p>The server is temporarily unable to service your request.</p>"
        "</body></html>"
    ).encode()

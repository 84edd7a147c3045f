"""The QBO layer: HTTP client, OAuth, query builder, faults, rate limiting, credentials, webhooks.

Names are exported lazily so that importing a light module (``qbo.webhooks``, ``qbo.errors``) does
not pull in ``requests`` and the rest of the client.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "QBOClient": "client",
    "CallStats": "client",
    "QueryPage": "responses",
    "CDCResult": "responses",
    "CDCEntityChanges": "responses",
    "Query": "query",
    "RealmRateLimiter": "rate_limit",
    "OAuthSession": "oauth",
    "CompanyConnection": "credentials",
    "CompanyStore": "credentials",
    "TokenSet": "credentials",
    "TokenStore": "credentials",
    "QBOError": "errors",
    "QueryError": "errors",
    "QBOFault": "errors",
    "StaleObjectError": "errors",
    "ThrottledError": "errors",
    "AuthenticationError": "errors",
    "ValidationFault": "errors",
    "CDCWindowTooOldError": "errors",
    "ServerError": "errors",
    "ReauthorizationRequired": "errors",
    "TransportError": "errors",
    "RetriesExhausted": "errors",
    "EndpointRefused": "errors",
    "parse_fault": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

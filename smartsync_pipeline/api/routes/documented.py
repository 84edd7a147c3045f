"""What the OpenAPI document says about errors and caching headers, shared by the routes."""

from __future__ import annotations

from typing import Any

from fastapi import Header

from smartsync_pipeline.api.problems import PROBLEM_JSON, Problem

_PROBLEM_SCHEMA = Problem.model_json_schema()


def problem(description: str, **headers: str) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}
    if headers:
        out["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return out


AUTH_ERRORS = {
    401: problem("no API key, or an unknown or revoked one", **{"WWW-Authenticate": "Bearer"}),
    403: problem("the key lacks the scope this needs"),
    429: problem("over the key's rate limit", **{"Retry-After": "seconds", "RateLimit": "remaining quota"}),
}
READ_ERRORS = {
    304: {"description": "not modified: the If-None-Match tag still matches the data"},
    400: problem("a bad parameter or header; `invalid_params` names it"),
    **AUTH_ERRORS,
    404: problem("no such business, or not one this key may see (the same answer either way)"),
    409: problem("the company must be reconnected to QuickBooks (`reconnect` says how)"),
    503: problem("QuickBooks unavailable and the mirror older than the stale-if-error bound", **{"Retry-After": "s"}),
}
CACHING_HEADERS = {
    "ETag": "weak validator of the data behind the answer",
    "Age": "seconds since the data was last refreshed from QuickBooks",
    "Last-Modified": "when the data was last refreshed from QuickBooks",
    "Cache-Control": "private, max-age=<remaining freshness>, stale-if-error=<bound>",
    "Smartsync-Stale": "present when the answer is stale: `stale-if-error` when QuickBooks failed",
    "Link": 'rel="next" when there are more pages',
}


def ok(description: str, *, html: bool = False) -> dict[int | str, dict[str, Any]]:
    out: dict[str, Any] = {
        "description": description,
        "headers": {
            name: {"description": text, "schema": {"type": "string"}} for name, text in CACHING_HEADERS.items()
        },
    }
    if html:
        out["content"] = {"text/html": {"schema": {"type": "string"}}}
    return {200: out, **READ_ERRORS}


def cache_control_header(
    cache_control: str | None = Header(
        None,
        alias="Cache-Control",
        description="`max-age=N`: data at most N s old (0: refresh from QuickBooks first); "
        "`stale-if-error=N`: accept stale data at most N s old when QuickBooks fails",
    ),
    if_none_match: str | None = Header(None, alias="If-None-Match", description="an ETag from an earlier answer"),
) -> None:
    """Declares the conditional and caching request headers (they are read from the request)."""

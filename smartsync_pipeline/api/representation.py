"""One answer's way out: read (in the pool), validators, 304 or the body, caching headers.

A route says how to compute its answer (``Computed``): the provenance of every read behind it and
how to build the body. The body is only built when the client does not already hold it
(``If-None-Match``), and is serialized in the pool, off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from smartsync_pipeline.api.caching import (
    Freshness,
    RequestFreshness,
    etag_matches,
    not_modified_headers,
    parse_request_cache_control,
    response_headers,
    weak_etag,
)
from smartsync_pipeline.api.context import ApiContext
from smartsync_pipeline.api.paging import next_link
from smartsync_pipeline.api.problems import ProblemError

HTML = "text/html"


@dataclass
class Computed:
    provenances: list[Any]
    build: Callable[[], BaseModel]
    today: date
    next_cursor: str | None = None
    html: Callable[[], str] | None = None
    identity: tuple[Any, ...] = field(default_factory=tuple)


def wants_html(request: Request) -> bool:
    """A browser navigating here (``Accept: text/html`` before any JSON)."""
    accept = request.headers.get("accept", "")
    if HTML not in accept:
        return False
    json_at = accept.find("application/json")
    return json_at < 0 or accept.find(HTML) < json_at


async def respond(
    request: Request,
    business_id: str,
    compute: Callable[[float | None], Computed],
    *,
    html: bool = False,
    cursor_param: str = "cursor",
) -> Response:
    ctx: ApiContext = request.app.state.ctx
    asked: RequestFreshness = parse_request_cache_control(request.headers.get("cache-control"))
    ctx.require_business(business_id)
    computed = await ctx.run(business_id, compute, asked.max_age)
    ctx.note_provenance(business_id, computed.provenances)
    identity = await ctx.pool.run(ctx.data_identity, business_id, computed.provenances)
    fresh = Freshness.of(computed.provenances, identity)
    if fresh.stale_if_error and asked.stale_if_error is not None and (fresh.age_seconds or 0) > asked.stale_if_error:
        raise ProblemError(
            503, "qbo-unavailable", "QuickBooks is unavailable and the mirror is too old for this request",
            f"QBO could not be reached ({fresh.reason}); the newest data is {fresh.age_seconds:.0f} s old, "
            f"beyond the request's stale-if-error={asked.stale_if_error:.0f}",
            headers={"Retry-After": "30"}, business_id=business_id,
        )  # fmt: skip
    media = HTML if html else "application/json"
    query = sorted((k, v) for k, v in request.query_params.multi_items())
    etag = weak_etag(
        request.url.path, query, media, computed.today, fresh.identity, fresh.stale_if_error, *computed.identity
    )
    headers = response_headers(fresh, etag, ctx.settings.stale_if_error_seconds)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=not_modified_headers(headers))
    if computed.next_cursor is not None:
        headers["Link"] = next_link(request.url, **{cursor_param: computed.next_cursor})
    if html and computed.html is not None:
        body = await ctx.pool.run(computed.html)
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)
    payload = await ctx.pool.run(lambda: computed.build().model_dump_json().encode())
    return Response(payload, media_type="application/json", headers=headers)

"""The change-log feed of a company and the history of one object, read from the newest published
snapshot (read-only; never the mirror file). Paged by ``after`` = the last change id seen."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from smartsync_pipeline.api import models
from smartsync_pipeline.api.auth import business_of, scoped
from smartsync_pipeline.api.caching import etag_matches, http_date, weak_etag
from smartsync_pipeline.api.context import ApiContext
from smartsync_pipeline.api.keys import ApiKey
from smartsync_pipeline.api.paging import DEFAULT_LIMIT, next_link
from smartsync_pipeline.api.problems import bad_parameter
from smartsync_pipeline.api.routes.businesses import BusinessId, Limit
from smartsync_pipeline.api.routes.documented import READ_ERRORS, cache_control_header
from smartsync_pipeline.entities import find_entity

router = APIRouter(tags=["change log"], dependencies=[Depends(cache_control_header)])

After = Annotated[int, Query(ge=0, le=2**62, description="only changes after this change id (the feed's cursor)")]
_COLUMNS = (
    "change_id, entity, entity_id, op, sync_token_before, sync_token_after, changed_fields, qbo_last_updated, "
    "recorded_at, trigger"
)
_FEED_HEADERS = {
    "ETag": "weak validator (snapshot content and query)",
    "Last-Modified": "when the snapshot was published",
    "Link": 'rel="next" while more changes follow',
}
_OK = {200: {"description": "changes, oldest first",
             "headers": {k: {"description": v, "schema": {"type": "string"}} for k, v in _FEED_HEADERS.items()}},
       **READ_ERRORS}  # fmt: skip


def _entity_name(entity: str | None) -> str | None:
    if entity is None:
        return None
    spec = find_entity(entity)
    if spec is None:
        raise bad_parameter("entity", f"not a mirrored QuickBooks entity: {entity!r}")
    return spec.name


def _read(
    ctx: ApiContext, business_id: str, after: int, limit: int, entity: str | None, entity_id: str | None
) -> tuple[list[dict[str, Any]], Any]:
    where, params = ["realm_id = ?", "change_id > ?"], [business_id, after]
    if entity is not None:
        where.append("entity = ?")
        params.append(entity)
    columns = _COLUMNS
    if entity_id is not None:
        where.append("entity_id = ?")
        params.append(entity_id)
        columns += ", before_json, after_json"
    sql = f"SELECT {columns} FROM change_log WHERE {' AND '.join(where)} ORDER BY change_id LIMIT ?"
    snapshots = ctx.reader.snapshots()
    if snapshots.current(business_id) is None:  # the business's own shard: its own change log
        return [], None
    with snapshots.cursor(realm_id=business_id) as (cur, info):
        result = cur.execute(sql, [*params, limit + 1])
        names = [d[0] for d in result.description]
        rows = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    for row in rows:
        for side in ("before", "after"):
            raw = row.pop(f"{side}_json", None)
            if entity_id is not None:
                row[side] = json.loads(raw) if isinstance(raw, str) else raw
    return rows, info


async def _feed(
    request: Request, business_id: str, after: int, limit: int, entity: str | None, entity_id: str | None
) -> Response:
    ctx: ApiContext = request.app.state.ctx
    ctx.require_business(business_id)
    rows, info = await ctx.run(business_id, _read, ctx, business_id, after, limit, entity, entity_id)
    more = len(rows) > limit
    rows = rows[:limit]
    next_after = rows[-1]["change_id"] if more else None
    etag = weak_etag(request.url.path, sorted(request.query_params.multi_items()), info.content_key if info else "")
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if info is not None:
        headers["Last-Modified"] = http_date(info.data_published_at)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if next_after is not None:
        headers["Link"] = next_link(request.url, after=next_after)
    body = models.Changes(
        business_id=business_id, snapshot_generation=info.generation if info else None,
        items=[models.Change(**r) for r in rows], next_cursor=str(next_after) if next_after is not None else None,
    )  # fmt: skip
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)


@router.get("/businesses/{business_id}/changes", response_model=models.Changes, responses=_OK)
async def company_changes(
    request: Request, business_id: BusinessId, after: After = 0, limit: Limit = DEFAULT_LIMIT,
    entity: Annotated[str | None, Query(max_length=40, description="only this entity, e.g. Bill")] = None,
    key: ApiKey = Depends(scoped("read")),
) -> Response:  # fmt: skip
    """Every change the mirror observed for the company (the hash-chained change log), oldest first."""
    business_of(business_id, key)
    return await _feed(request, business_id, after, limit, _entity_name(entity), None)


@router.get("/businesses/{business_id}/changes/{entity}/{entity_id}", response_model=models.Changes, responses=_OK)
async def object_history(
    request: Request, business_id: BusinessId,
    entity: Annotated[str, Path(max_length=40, description="the entity, e.g. Bill")],
    entity_id: Annotated[str, Path(pattern=r"^[0-9A-Za-z_-]{1,64}$", description="the QuickBooks Id")],
    after: After = 0, limit: Limit = DEFAULT_LIMIT, key: ApiKey = Depends(scoped("read")),
) -> Response:  # fmt: skip
    """The history of one object: every create, update and delete, with the object before and after."""
    business_of(business_id, key)
    return await _feed(request, business_id, after, limit, _entity_name(entity), entity_id)

"""Sync status per entity of a business (from the published state, no DuckDB file opened), and the
process's liveness and readiness."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from smartsync_pipeline.api import models
from smartsync_pipeline.api.auth import business_of, scoped
from smartsync_pipeline.api.context import ApiContext
from smartsync_pipeline.api.keys import ApiKey
from smartsync_pipeline.api.routes.businesses import BusinessId
from smartsync_pipeline.api.routes.documented import AUTH_ERRORS, problem
from smartsync_pipeline.entities import ENTITIES

router = APIRouter()


def _status(ctx: ApiContext, business_id: str) -> models.SyncStatus:
    info = ctx.reader.snapshots().current(business_id)
    now = datetime.now(UTC)
    entities = []
    for spec in ENTITIES:
        row = info.entity_state(business_id, spec.name) if info else None
        last = datetime.fromisoformat(row["last_sync_at"]) if row and row.get("last_sync_at") else None
        full = datetime.fromisoformat(row["last_full_sync_at"]) if row and row.get("last_full_sync_at") else None
        age = (now - last).total_seconds() if last else None
        error = ctx.last_error(business_id, spec.name)
        if error is not None and (last is None or error[0] > last):
            state = "error"
        elif last is None:
            state = "never_synced"
        else:
            state = "fresh" if age is not None and age <= spec.freshness.fail.total_seconds() else "stale"
        entities.append(
            models.EntityStatus(
                entity=spec.name, state=state, last_successful_sync=last, last_full_sync=full,
                age_seconds=None if age is None else round(age, 3),
                window=models.SyncWindow(
                    warn_seconds=spec.freshness.warn.total_seconds(), fail_seconds=spec.freshness.fail.total_seconds()
                ),
                last_mode=row.get("last_mode") if row else None, last_trigger=row.get("last_trigger") if row else None,
                rows_active=row.get("rows_active") if row else None,
                last_error=models.LastError(at=error[0], detail=error[1]) if error else None,
            )
        )  # fmt: skip
    return models.SyncStatus(
        business_id=business_id, snapshot_generation=info.generation if info else None, entities=entities
    )


@router.get(
    "/businesses/{business_id}/sync-status", response_model=models.SyncStatus, tags=["businesses"],
    responses={**AUTH_ERRORS, 400: problem("bad business id"), 404: problem("no such business for this key")},
)  # fmt: skip
async def sync_status(request: Request, business_id: BusinessId, key: ApiKey = Depends(scoped("read"))) -> Response:
    """Per entity: fresh/stale/never synced/error, last successful sync, age, freshness window, last error."""
    business_of(business_id, key)
    ctx: ApiContext = request.app.state.ctx
    ctx.require_business(business_id)
    status = await ctx.run(business_id, _status, ctx, business_id)
    return Response(status.model_dump_json(), media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/healthz", response_model=models.Health, tags=["operations"])
async def healthz() -> dict[str, str]:
    """The process is up and its event loop answers."""
    return {"status": "ok"}


@router.get(
    "/readyz", response_model=models.Readiness, tags=["operations"],
    responses={503: {"description": "not ready", "model": models.Readiness}},
)  # fmt: skip
async def readyz(request: Request) -> JSONResponse:
    """Ready to answer: the state folder is usable and the worker pool runs."""
    ctx: ApiContext = request.app.state.ctx
    checks: dict[str, str] = {}

    def probe() -> None:
        ctx.settings.home.ensure()
        checks["home"] = "ok"
        reader = ctx.reader.snapshots()
        published = any(reader.current(realm) is not None for realm in ctx.settings.home.realm_ids())
        checks["snapshot"] = "ok" if published else "none published yet"

    try:
        await ctx.pool.run(probe)
        checks["pool"] = "ok"
    except Exception as exc:
        checks["home"] = f"unusable: {type(exc).__name__}"
    if getattr(request.app.state, "draining", False):
        checks["shutdown"] = "draining"
    ready = all(v in ("ok", "none published yet") for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
    )

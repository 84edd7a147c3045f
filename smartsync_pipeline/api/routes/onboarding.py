"""Onboarding: ``GET /connect/quickbooks`` sends the user to QuickBooks with a signed ``state``;
``GET /connect/quickbooks/callback`` takes them back, exchanges the code, stores the company's
credentials encrypted, adds the Dagster partition and starts the first sync."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse

from smartsync_pipeline.api.auth import scoped
from smartsync_pipeline.api.context import ApiContext
from smartsync_pipeline.api.keys import ApiKey
from smartsync_pipeline.api.oauth_state import StateError, StateSigner
from smartsync_pipeline.api.onboarding import (
    OnboardingError,
    authorization_url,
    callback_error,
    exchange_code,
    start_first_sync,
    store_connection,
)
from smartsync_pipeline.api.problems import ProblemError, bad_parameter
from smartsync_pipeline.api.routes.documented import AUTH_ERRORS, problem

router = APIRouter(tags=["onboarding"])
CALLBACK_PATH = "/connect/quickbooks/callback"


def _signer(ctx: ApiContext) -> StateSigner:
    return StateSigner(ctx.settings.home)


def _problem(exc: OnboardingError) -> ProblemError:
    titles = {"consent-denied": "Access was declined", "invalid-code": "The authorization code cannot be used"}
    return ProblemError(exc.status, exc.slug, titles.get(exc.slug, "Connecting the company failed"), str(exc))


@router.get(
    "/connect/quickbooks", status_code=302, summary="Start connecting a QuickBooks company (OAuth 2.0)",
    responses={302: {"description": "to the QuickBooks authorization page; `Location` carries a signed state",
                     "headers": {"Location": {"schema": {"type": "string"}}}}, **AUTH_ERRORS},
)  # fmt: skip
async def connect_quickbooks(request: Request, key: ApiKey = Depends(scoped("connect"))) -> RedirectResponse:
    ctx: ApiContext = request.app.state.ctx
    app = ctx.settings.oauth_app
    assert app is not None
    base = ctx.settings.public_url or str(request.base_url).rstrip("/")
    redirect_uri = base + CALLBACK_PATH
    state = await ctx.run(None, _signer(ctx).issue, redirect_uri, key.key_id)
    return RedirectResponse(
        authorization_url(app, redirect_uri, state), status_code=302, headers={"Cache-Control": "no-store"}
    )


@router.get(
    CALLBACK_PATH, summary="Where QuickBooks sends the user back",
    responses={200: {"description": "connected; the first sync has started"},
               400: problem("bad or replayed state, declined consent, a used or expired code"),
               502: problem("the token endpoint or QuickBooks failed")},
)  # fmt: skip
async def callback(
    request: Request,
    state: Annotated[str | None, Query(max_length=2000)] = None,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    realm_id: Annotated[str | None, Query(alias="realmId", max_length=64)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    ctx: ApiContext = request.app.state.ctx
    app = ctx.settings.oauth_app
    assert app is not None
    signer = _signer(ctx)
    try:
        checked = await ctx.pool.run(signer.verify, state)
        await ctx.pool.run(signer.consume, checked)
    except StateError as exc:
        raise ProblemError(400, "invalid-state", "The sign-in cannot be completed", f"{exc.reason}") from None
    denied = callback_error(error, error_description)
    if denied is not None:
        raise _problem(denied)
    if not code:
        raise bad_parameter("code", "missing: QuickBooks sends it back with the user")
    try:
        tokens = await ctx.pool.run(exchange_code, app, code, checked.redirect_uri)
        business_id = realm_id or tokens.get("realmId")
        connected = await ctx.pool.run(store_connection, ctx.settings.home, app, business_id, tokens)
    except OnboardingError as exc:
        raise _problem(exc) from None
    if checked.key_id:
        await ctx.run(None, ctx.keys.grant, checked.key_id, connected.business_id)
    body: dict[str, Any] = {
        "business_id": connected.business_id,
        "connected": True,
        "accounts": connected.accounts,
        "dagster_partition": connected.dagster_partition,
        "first_sync": "started" if ctx.settings.first_sync else "not started",
        "sync_status": f"/businesses/{connected.business_id}/sync-status",
    }
    if ctx.settings.first_sync:
        start_first_sync(
            ctx.settings.home, connected.business_id, lambda d: ctx.note_error(connected.business_id, "*", d)
        )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})

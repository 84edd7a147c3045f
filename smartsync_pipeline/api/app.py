"""``create_app(settings)``: the Runway Service as one ASGI application (FastAPI).

Routes: business resources, change-log feeds, sync status, health (always), OAuth onboarding (when an
OAuth app is configured), the QBO webhook receiver (when a verifier is configured). ``with_api=False``
serves only the webhook receiver and health (``smartsync webhooks serve``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from smartsync_pipeline.api import problems
from smartsync_pipeline.api.access_log import AccessLogMiddleware
from smartsync_pipeline.api.context import ApiContext
from smartsync_pipeline.api.settings import ApiSettings
from smartsync_pipeline.inbox.store import WebhookInbox

DESCRIPTION = """Fast answers about a QuickBooks Online company from a local mirror when it is fresh,
live from QuickBooks when it is not.

* **Freshness is HTTP caching**: send `Cache-Control: max-age=N` to accept data at most N seconds old
  (`max-age=0`: refresh from QuickBooks first). Answers carry `Age`, `Last-Modified`, a weak `ETag`
  (send it back in `If-None-Match` for a `304`) and `Cache-Control: private, max-age=<remaining>,
  stale-if-error=<bound>`. When QuickBooks fails, data within the stale-if-error bound is served
  flagged (`Smartsync-Stale: stale-if-error` and `"stale_if_error": true`).
* **Money** is an exact decimal string with two places (`"1234.50"`); dates are ISO 8601.
* **Pages**: `limit` and `cursor` (from `next_cursor` or the `Link: rel="next"` header).
* **Errors** are RFC 9457 `application/problem+json`.
* **Keys**: `Authorization: Bearer ssk_…` from `smartsync keys create`; per-key rate limits are
  announced in `RateLimit-Policy` / `RateLimit`.
"""


def create_app(settings: ApiSettings, *, inbox: WebhookInbox | None = None) -> FastAPI:
    """The app; ``inbox``: an open webhook inbox to use instead of the home's."""
    ctx = ApiContext(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if app.state.webhooks is not None:
            tasks.append(app.state.webhooks.start_pruning(ctx))
        try:
            yield
        finally:
            app.state.draining = True
            for task in tasks:
                task.cancel()
            await ctx.pool.run(lambda: None)  # the pool still answers: in-flight reads have finished
            ctx.close()
            if app.state.webhooks is not None:
                app.state.webhooks.close()

    app = FastAPI(
        title="smartsync Runway Service",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.draining = False
    app.state.webhooks = None
    problems.install(app)

    from smartsync_pipeline.api.routes import status

    app.include_router(status.router)
    if settings.with_api:
        from smartsync_pipeline.api.routes import businesses, changes

        app.include_router(businesses.router)
        app.include_router(changes.router)
    if settings.with_api and settings.oauth_app is not None:
        from smartsync_pipeline.api.routes import onboarding

        app.include_router(onboarding.router)
    if settings.webhook_verifier:
        from smartsync_pipeline.api.routes import webhooks

        app.state.webhooks = webhooks.WebhookEndpoint(settings, inbox)
        app.include_router(webhooks.router)
    app.add_middleware(AccessLogMiddleware)
    _document_400_not_422(app)
    return app


def _document_400_not_422(app: FastAPI) -> None:
    """Bad parameters are 400 problems here (``problems.install``), not FastAPI's 422: say so in the
    document too."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = build()
            for path in doc.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_document(*, oauth: bool = True, webhooks: bool = True) -> dict:
    """The OpenAPI document of a server configured so, built without serving (docs, tests)."""
    import tempfile

    from smartsync_pipeline.api.settings import OAuthApp
    from smartsync_pipeline.home import Home

    with tempfile.TemporaryDirectory(prefix="smartsync-openapi-") as folder:
        settings = ApiSettings(
            home=Home(folder),
            oauth_app=OAuthApp("client-id", "client-secret") if oauth else None,
            webhook_verifier="verifier" if webhooks else None,
        )
        app = create_app(settings)
        try:
            return app.openapi()
        finally:
            if app.state.webhooks is not None:
                app.state.webhooks.close()
            app.state.ctx.close()

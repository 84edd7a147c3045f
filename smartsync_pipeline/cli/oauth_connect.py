"""``smartsync connect --oauth``: connect a company by signing in to QuickBooks in a browser, the
way cloud CLIs log in. A one-shot listener on 127.0.0.1 receives the redirect; the rest is the
Runway Service's onboarding (signed state, code exchange, encrypted storage, partition, first sync)."""

from __future__ import annotations

import asyncio
import sys
import threading
import webbrowser
from typing import Any

import click

from smartsync_pipeline.home import Home

PAGE = "<!doctype html><title>smartsync</title><h1>{title}</h1><p>{text}</p><p>You can close this window.</p>"


def connect_with_oauth(
    oauth_app_file: str | None, *, redirect_port: int, open_browser: bool, timeout: float, sync: bool
) -> dict[str, Any]:
    from html import escape

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from smartsync_pipeline.api.oauth_state import StateError, StateSigner
    from smartsync_pipeline.api.onboarding import (
        OnboardingError,
        authorization_url,
        callback_error,
        exchange_code,
        store_connection,
    )
    from smartsync_pipeline.api.server import ServedApp
    from smartsync_pipeline.cli.serve_command import oauth_app_from

    app = oauth_app_from(oauth_app_file)
    if app is None:
        raise click.UsageError(
            "--oauth needs the OAuth app: --oauth-app FILE (the sandbox's JSON line works) or "
            "SMARTSYNC_OAUTH_CLIENT_ID and SMARTSYNC_OAUTH_CLIENT_SECRET"
        )
    home = Home.from_env()
    signer = StateSigner(home)
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def finish(params: dict[str, str]) -> dict[str, Any]:
        checked = signer.verify(params.get("state"))
        signer.consume(checked)
        denied = callback_error(params.get("error"), params.get("error_description"))
        if denied is not None:
            raise denied
        if not params.get("code"):
            raise OnboardingError("bad-callback", "QuickBooks sent no authorization code back; start again")
        tokens = exchange_code(app, params["code"], checked.redirect_uri)
        connected = store_connection(home, app, params.get("realmId") or tokens.get("realmId"), tokens)
        return {"business_id": connected.business_id, "accounts": connected.accounts,
                "dagster_partition": connected.dagster_partition}  # fmt: skip

    async def callback(request: Request) -> HTMLResponse:
        if done.is_set():
            return HTMLResponse(PAGE.format(title="Already done", text="This sign-in has finished."), status_code=409)
        try:
            outcome["result"] = await asyncio.to_thread(finish, dict(request.query_params))
            page, status = PAGE.format(title="Connected", text="Your QuickBooks company is connected."), 200
        except (StateError, OnboardingError) as exc:
            outcome["error"] = str(exc)
            page, status = PAGE.format(title="Not connected", text=escape(str(exc))), 400
        done.set()
        return HTMLResponse(page, status_code=status)

    listener = Starlette(routes=[Route("/callback", callback)])
    try:
        served = ServedApp(listener, "127.0.0.1", redirect_port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{redirect_port}: {exc.strerror or exc}") from None
    redirect_uri = served.url + "/callback"
    url = authorization_url(app, redirect_uri, signer.issue(redirect_uri, None))
    with served:
        click.echo(f"Sign in to QuickBooks to connect a company: {url}")
        sys.stdout.flush()
        if open_browser:
            webbrowser.open(url)
        if not done.wait(timeout):
            raise click.ClickException(f"no answer from the QuickBooks sign-in within {timeout:.0f} s; run it again")
    if "error" in outcome:
        raise click.ClickException(outcome["error"])
    result = outcome["result"]
    if sync:
        from smartsync_pipeline.sync.engine import SyncEngine

        report = SyncEngine(home).sync(result["business_id"], mode="auto", trigger="backfill")
        result["synced_entities"] = len(report.entities)
    return result

"""``smartsync serve``: the Runway Service (HTTP API, OAuth onboarding, webhooks) on one ASGI server."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home


def optional_verifier(home: Home, env_name: str) -> str | None:
    """The webhook verifier when one is configured (env or `connect`'s file), else None."""
    from smartsync_pipeline.cli.company_commands import VERIFIER_FILE
    from smartsync_pipeline.cli.webhook_commands import webhook_verifier

    if not os.environ.get(env_name, "").strip() and not (home.root / VERIFIER_FILE).exists():
        return None
    return webhook_verifier(home, env_name)


def oauth_app_from(path: str | None):
    """The OAuth app: a JSON file (the sandbox's start-up line works as it is) or the environment."""
    from smartsync_pipeline.api.settings import OAuthApp

    if path:
        try:
            doc = json.loads(Path(path).read_text().splitlines()[0])
        except (OSError, ValueError, IndexError) as exc:
            raise click.BadParameter(f"cannot read an OAuth app from {path}: {type(exc).__name__}") from None
        missing = [k for k in ("client_id", "client_secret") if not doc.get(k)]
        if missing:
            raise click.BadParameter(f"{path} lacks {', '.join(missing)}", param_hint="--oauth-app")
        fields = ("authorize_url", "token_url", "api_base", "scope")
        fields += ("webhook_verifier",)
        return OAuthApp(doc["client_id"], doc["client_secret"], **{k: doc[k] for k in fields if doc.get(k)})
    client_id = os.environ.get("SMARTSYNC_OAUTH_CLIENT_ID", "").strip()
    secret = os.environ.get("SMARTSYNC_OAUTH_CLIENT_SECRET", "").strip()
    return OAuthApp(client_id, secret) if client_id and secret else None


def access_logging() -> None:
    """Access lines (JSON) on stderr at INFO unless SMARTSYNC_LOG_LEVEL asks for less."""
    if os.environ.get("SMARTSYNC_LOG_LEVEL", "").upper() in ("WARNING", "ERROR", "CRITICAL"):
        return
    logger = logging.getLogger("smartsync.api.access")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s access %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port")
@click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 256), help="threads for blocking reads")
@click.option("--stale-if-error", type=click.FloatRange(0, 315_360_000), help="seconds (default 6 h)")
@click.option("--refresh-wait", type=click.FloatRange(0.1, 3600), help="seconds a read waits for another refresh")
@click.option(
    "--read-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1, 600),
    help="seconds a client may take to send a whole request before it is cut off",
)
@click.option("--oauth-app", metavar="FILE", help="JSON with client_id, client_secret (and URLs); or env")
@click.option("--public-url", help="base URL browsers reach this server at (OAuth redirect_uri)")
@click.option(
    "--verifier-env",
    default="SMARTSYNC_WEBHOOK_VERIFIER",
    show_default=True,
    help="environment variable holding the Intuit webhook verifier token",
)
@click.option("--no-first-sync", is_flag=True, help="do not sync a company right after it is connected")
@friendly_errors
def serve(
    host: str, port: int, workers: int, stale_if_error: float | None, refresh_wait: float | None, read_timeout: float,
    oauth_app: str | None, public_url: str | None, verifier_env: str, no_first_sync: bool,
) -> None:  # fmt: skip
    """Serve the Runway Service: business answers over HTTP (OpenAPI at /openapi.json)."""
    from smartsync_pipeline.api.app import create_app
    from smartsync_pipeline.api.server import bind, url_of
    from smartsync_pipeline.api.server import serve as run
    from smartsync_pipeline.api.settings import ApiSettings

    home = Home.from_env()
    reader_options: dict[str, float] = {}
    if stale_if_error is not None:
        reader_options["stale_if_error_seconds"] = stale_if_error
    if refresh_wait is not None:
        reader_options["refresh_wait_seconds"] = refresh_wait
    settings = ApiSettings(
        home=home, workers=workers, reader_options=reader_options, read_timeout_seconds=read_timeout,
        webhook_verifier=optional_verifier(home, verifier_env), oauth_app=oauth_app_from(oauth_app),
        public_url=public_url.rstrip("/") if public_url else None, first_sync=not no_first_sync,
    )  # fmt: skip
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    app = create_app(settings)
    parts = [
        "API",
        "OAuth onboarding" if settings.oauth_app else None,
        "webhooks" if settings.webhook_verifier else None,
    ]
    click.echo(f"Runway Service at {url_of(sock)} ({', '.join(p for p in parts if p)}; OpenAPI at /openapi.json)")
    sys.stdout.flush()
    access_logging()
    run(app, sock, read_timeout=read_timeout)

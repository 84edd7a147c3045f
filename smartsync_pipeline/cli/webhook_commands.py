"""``smartsync webhooks ...``: the webhook endpoint that feeds the Dagster sensor."""

from __future__ import annotations

import os
import sys

import click

from smartsync_pipeline.cli.company_commands import VERIFIER_FILE
from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox import WebhookInbox


@click.group()
def webhooks() -> None:
    """Receive QBO webhooks and queue them for the Dagster sensor."""


def webhook_verifier(home: Home, env_name: str) -> str:
    """The verifier token: from ``$env_name`` when set, else the encrypted file ``connect`` wrote."""
    from_env = os.environ.get(env_name, "").strip()
    if from_env:
        return from_env
    path = home.root / VERIFIER_FILE
    if not path.exists():
        raise click.ClickException(
            f"no webhook verifier: set ${env_name} or run `smartsync connect` to store one in {path}"
        )
    from smartsync_pipeline.qbo.secrets import decrypt

    try:
        verifier = decrypt(path.read_text(encoding="ascii").strip()).strip()
    except (OSError, UnicodeError, ValueError) as exc:
        raise click.ClickException(f"cannot read the webhook verifier in {path} ({type(exc).__name__})") from None
    except Exception as exc:  # e.g. SecretKeyError: the message names the key, never the secret
        raise click.ClickException(f"cannot decrypt the webhook verifier in {path}: {exc}") from None
    if not verifier:
        raise click.ClickException(f"the webhook verifier in {path} is empty")
    return verifier


@webhooks.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option(
    "--verifier-env",
    default="SMARTSYNC_WEBHOOK_VERIFIER",
    show_default=True,
    help="Environment variable holding the Intuit verifier token (else the encrypted file from `connect`).",
)
@click.option(
    "--max-concurrency",
    default=32,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="requests handled at once; more get 503 with Retry-After",
)
@click.option(
    "--read-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1, 600),
    help="seconds a client may take to send a whole request before it is cut off",
)
def serve(host: str, port: int, verifier_env: str, max_concurrency: int, read_timeout: float) -> None:
    """Receive QBO webhooks at POST /webhooks/qbo and store them in the inbox until Ctrl-C.

    The same ASGI app as `smartsync serve`, with only the webhook routes and health."""
    from smartsync_pipeline.api.app import create_app
    from smartsync_pipeline.api.server import bind, url_of
    from smartsync_pipeline.api.server import serve as run
    from smartsync_pipeline.api.webhook_receiver import webhook_settings

    home = Home.from_env()
    verifier = webhook_verifier(home, verifier_env)
    settings = webhook_settings(
        home, verifier, webhook_max_concurrency=max_concurrency, read_timeout_seconds=read_timeout
    )
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    app = create_app(settings)  # opens (creates) the inbox only now that the port is ours
    click.echo(f"Receiving QBO webhooks at {url_of(sock)}/webhooks/qbo (inbox {home.inbox_path})")
    sys.stdout.flush()
    run(app, sock, read_timeout=read_timeout)
    c = app.state.webhooks.counters
    click.echo(
        f"stopped: {c.accepted} deliveries accepted, {c.events_stored} events stored, {c.duplicates} "
        f"duplicates, {c.rejected_signature} bad signatures, {c.rejected_payload} malformed, "
        f"{c.busy} turned away busy",
        err=True,
    )


@webhooks.command("prune")
@click.option(
    "--older-than-days",
    default=7.0,
    show_default=True,
    type=click.FloatRange(0, 3650),
    help="keep handled events younger than this",
)
def prune(older_than_days: float) -> None:
    """Delete handled webhook events (the sensor has run them) older than the retention."""
    path = Home.from_env().inbox_path
    if not path.exists():
        click.echo(f"inbox {path}: nothing to prune (no deliveries yet)")
        return
    with WebhookInbox(path) as inbox:
        removed = inbox.prune(older_than_days * 86400)
        click.echo(f"inbox {path}: pruned {removed} handled events; {inbox.count()} left")


@webhooks.command("status")
def status() -> None:
    """How many events the inbox holds and its latest sequence number (the sensor's cursor space)."""
    path = Home.from_env().inbox_path
    if not path.exists():
        click.echo(f"inbox {path}: 0 events, latest seq 0 (no deliveries yet)")
        return
    with WebhookInbox(path) as inbox:
        click.echo(f"inbox {path}: {inbox.count()} events, latest seq {inbox.latest_seq()}")

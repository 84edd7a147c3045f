"""``smartsync webhooks ...``: the webhook endpoint that feeds the Dagster sensor."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from smartsync_pipeline.cli.company_commands import VERIFIER_FILE
from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox import WebhookInbox
from smartsync_pipeline.inbox.receiver import WebhookReceiver


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
def serve(host: str, port: int, verifier_env: str) -> None:
    """Receive QBO webhooks at POST /webhooks/qbo and store them in the inbox until Ctrl-C."""
    home = Home.from_env()
    verifier = webhook_verifier(home, verifier_env)
    new_inbox = not home.inbox_path.exists()
    inbox = WebhookInbox(home.inbox_path)
    try:
        try:
            receiver = WebhookReceiver(inbox, verifier, host=host, port=port)
        except OSError as exc:
            inbox.close()
            if new_inbox:  # a refused start leaves SMARTSYNC_HOME as it was
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{home.inbox_path}{suffix}").unlink(missing_ok=True)
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        click.echo(f"Receiving QBO webhooks at {receiver.webhook_url} (inbox {inbox.path})")
        sys.stdout.flush()
        previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops as cleanly as Ctrl-C
        try:
            receiver.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            receiver.stop()
        c = receiver.counters
        click.echo(
            f"stopped: {c.accepted} deliveries accepted, {c.events_stored} events stored, {c.duplicates} "
            f"duplicates, {c.rejected_signature} bad signatures, {c.rejected_payload} malformed, "
            f"{c.rate_limited} rate limited",
            err=True,
        )
    finally:
        inbox.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@webhooks.command("status")
def status() -> None:
    """How many events the inbox holds and its latest sequence number (the sensor's cursor space)."""
    path = Home.from_env().inbox_path
    if not path.exists():
        click.echo(f"inbox {path}: 0 events, latest seq 0 (no deliveries yet)")
        return
    with WebhookInbox(path) as inbox:
        click.echo(f"inbox {path}: {inbox.count()} events, latest seq {inbox.latest_seq()}")

"""``smartsync keys create|list|revoke``: API keys for the Runway Service."""

from __future__ import annotations

import json

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home


def _store():
    from smartsync_pipeline.api.keys import KeyStore

    return KeyStore(Home.from_env())


@click.group()
def keys() -> None:
    """API keys: each scoped to businesses and read scopes, stored hashed."""


@keys.command("create")
@click.option("--name", default="", help="who or what uses the key")
@click.option("--business", "businesses", multiple=True, help="realm id (repeat), or * for all")
@click.option("--scope", "scopes", multiple=True, default=("read",), show_default=True, help="read and/or connect")
@click.option("--rate", default=600, show_default=True, type=click.IntRange(1, 1_000_000), help="requests per minute")
@click.option("--json", "as_json", is_flag=True, help="print the new key and its record as JSON")
@friendly_errors
def create(name: str, businesses: tuple[str, ...], scopes: tuple[str, ...], rate: int, as_json: bool) -> None:
    """Create a key; the key itself is printed once and never stored."""
    record, secret = _store().create(name, businesses, scopes, rate)
    if as_json:
        click.echo(json.dumps({**record.public(), "key": secret}))
        return
    click.echo(secret)
    click.echo(
        f"key {record.key_id} ({record.name}): businesses {', '.join(record.businesses)}; scopes "
        f"{', '.join(record.scopes)}; {record.rate_per_minute}/min. Shown once: store it now.",
        err=True,
    )


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="print the keys as JSON")
@friendly_errors
def list_keys(as_json: bool) -> None:
    """Every key (ids and scopes; never the keys themselves)."""
    records = _store().list()
    if as_json:
        click.echo(json.dumps([r.public() for r in records], indent=1))
        return
    if not records:
        click.echo("no API keys; create one with `smartsync keys create --business <realm>`")
    for r in records:
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        click.echo(
            f"{r.key_id}\t{r.name}\t{','.join(r.businesses)}\t{','.join(r.scopes)}\t{r.rate_per_minute}/min\t{state}"
        )


@keys.command("revoke")
@click.argument("key_id")
@friendly_errors
def revoke(key_id: str) -> None:
    """Revoke a key (by id, or the key itself); effective on the server's next request."""
    record = _store().revoke(key_id)
    click.echo(f"revoked key {record.key_id} ({record.name}) at {record.revoked_at}")

"""``smartsync disconnect --realm R [--purge]``: stop syncing a company, optionally deleting its data."""

from __future__ import annotations

import os

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home


@click.command()
@click.option("--realm", "realm_id", required=True, help="the company's realm id")
@click.option("--purge", is_flag=True, help="also delete its mirror, snapshots, archive and credentials")
@click.option("--timeout", default=600.0, show_default=True, help="seconds to wait for its running syncs")
@friendly_errors
def disconnect(realm_id: str, purge: bool, timeout: float) -> None:
    """Stop syncing a company: no schedule, sensor or webhook syncs it, and it leaves analyst.sql.
    Every other company is untouched."""
    from smartsync_pipeline.defs.partitions import unregister_realm
    from smartsync_pipeline.sync.company_shards import disconnect_company

    home = Home.from_env()
    disconnect_company(home, home.realm(realm_id).realm_id, purge=purge, timeout=timeout)
    partition = unregister_realm(realm_id)
    what = "purged: data and credentials deleted" if purge else "disconnected: data kept, credentials parked"
    click.echo(f"company {realm_id} {what}" + ("; removed from the Dagster partitions" if partition else ""))
    if purge and _forget_chain_in_dagster(realm_id):
        click.echo("its change log's head is no longer tracked in Dagster (a new connect starts a new chain)")


def _forget_chain_in_dagster(realm_id: str) -> bool:
    """The purged chain leaves Dagster's audit anchors too (see ``defs.assets.change_log.forget_company``);
    like the partition, a failure here is a warning, never a failed disconnect."""
    if not os.environ.get("DAGSTER_HOME"):
        return False
    import dagster as dg

    from smartsync_pipeline.defs.assets.change_log import forget_company

    try:
        with dg.DagsterInstance.get() as instance:
            return forget_company(instance, realm_id)
    except Exception as exc:
        click.echo(f"warning: Dagster still tracks the purged change log of company {realm_id} ({exc})", err=True)
        return False

"""``smartsync``: the one CLI. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import click

from smartsync_pipeline.cli.company_commands import companies, connect
from smartsync_pipeline.cli.error_reporting import configure_logging
from smartsync_pipeline.cli.read_commands import bills_due, digest
from smartsync_pipeline.cli.sandbox_commands import sandbox
from smartsync_pipeline.cli.sync_commands import audit, log_command, reconcile, sync
from smartsync_pipeline.cli.webhook_commands import webhooks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smartsync_pipeline")
def cli() -> None:
    """smartsync: a fresh-when-it-matters, audited DuckDB mirror of QuickBooks Online."""
    configure_logging()


for command in (connect, companies, sync, log_command, audit, reconcile, bills_due, digest, sandbox, webhooks):
    cli.add_command(command)


if __name__ == "__main__":
    cli()

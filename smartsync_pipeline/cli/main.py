"""``smartsync``: the one CLI. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import click

from smartsync_pipeline.cli.sandbox_commands import sandbox
from smartsync_pipeline.cli.webhook_commands import webhooks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smartsync_pipeline")
def cli() -> None:
    """smartsync: a fresh-when-it-matters, audited DuckDB mirror of QuickBooks Online."""


cli.add_command(sandbox)
cli.add_command(webhooks)


if __name__ == "__main__":
    cli()

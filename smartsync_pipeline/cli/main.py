"""``smartsync``: the one CLI. Each command lives in its own module and is imported only when used,
so ``smartsync sandbox serve`` does not pay for Dagster and DuckDB imports it never needs."""

from __future__ import annotations

import importlib

import click

from smartsync_pipeline.cli.error_reporting import configure_logging
from smartsync_pipeline.cli.process_end import end

COMMANDS: dict[str, str] = {
    "connect": "smartsync_pipeline.cli.company_commands:connect",
    "companies": "smartsync_pipeline.cli.company_commands:companies",
    "disconnect": "smartsync_pipeline.cli.disconnect_command:disconnect",
    "sync": "smartsync_pipeline.cli.sync_commands:sync",
    "log": "smartsync_pipeline.cli.sync_commands:log_command",
    "audit": "smartsync_pipeline.cli.sync_commands:audit",
    "reconcile": "smartsync_pipeline.cli.sync_commands:reconcile",
    "bills-due": "smartsync_pipeline.cli.read_commands:bills_due",
    "digest": "smartsync_pipeline.cli.read_commands:digest",
    "sql": "smartsync_pipeline.cli.sql_command:sql",
    "demo": "smartsync_pipeline.cli.demo_command:demo",
    "ui": "smartsync_pipeline.cli.ui_command:ui",
    "instance": "smartsync_pipeline.cli.instance_commands:instance",
    "sandbox": "smartsync_pipeline.cli.sandbox_commands:sandbox",
    "webhooks": "smartsync_pipeline.cli.webhook_commands:webhooks",
    "fleet": "smartsync_pipeline.cli.fleet_commands:fleet",
    "serve": "smartsync_pipeline.cli.serve_command:serve",
    "keys": "smartsync_pipeline.cli.key_commands:keys",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smartsync_pipeline")
def cli() -> None:
    """smartsync: a fresh-when-it-matters, audited DuckDB mirror of QuickBooks Online."""
    configure_logging()


def main() -> None:
    """The ``smartsync`` console script: ``cli``, then the process's end (see process_end.py)."""
    try:
        cli.main()
    except SystemExit as finished:  # click ends every standalone run with one
        end(finished.code)


if __name__ == "__main__":
    main()

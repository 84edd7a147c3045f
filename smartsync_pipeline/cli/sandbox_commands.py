"""``smartsync sandbox serve|start|stop|status``: the local QBO-compatible sandbox, in the foreground
(``serve``) or as a background service of SMARTSYNC_HOME (``start``/``stop``/``status``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.sandbox.company import DEFAULT_PROFILE, PROFILES, SCALES

if TYPE_CHECKING:
    from smartsync_pipeline.sandbox.service import SandboxService


@click.group()
def sandbox() -> None:
    """The local QBO-compatible sandbox server."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="loopback address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port.")
@click.option("--seed", type=int, default=7, show_default=True, help="seed of the generated company data")
@click.option(
    "--scale", type=click.Choice(sorted(SCALES)), default="small", show_default=True, help="size of each company"
)
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default=DEFAULT_PROFILE,
    show_default=True,
    help="how the seeded companies run their books: healthy (most bills and invoices paid on time) or struggling",
)
@click.option("--realms", type=int, default=1, show_default=True, help="number of companies (realms) to serve")
@click.option("--state-file", type=click.Path(dir_okay=False), default=None, help="Journal to survive restarts.")
@click.option("--per-window", type=int, default=500, show_default=True, help="Requests per window per realm.")
@click.option("--window-seconds", type=float, default=60.0, show_default=True, help="length of the rate-limit window")
@click.option(
    "--max-concurrent", type=int, default=10, show_default=True, help="concurrent requests per realm (QBO: 10)"
)
@click.option(
    "--rotation-grace-seconds",
    type=float,
    default=0.0,
    show_default=True,
    help="how long a rotated refresh token keeps working (QBO: none)",
)
@click.option(
    "--rotation-interval-seconds",
    type=float,
    default=0.0,
    show_default=True,
    help="Refresh tokens keep their value this long (Intuit: 86400); 0 rotates on every refresh.",
)
@click.option("--start-time", default=None, help="ISO time for the sandbox clock (default: now).")
@click.option("--freeze", is_flag=True, help="Real time does not move the sandbox clock.")
@click.option("--access-log", is_flag=True, help="Log every request line to stderr.")
@click.option("--parent-pid", type=int, default=None, help="Stop when this process has exited.")
def serve(**options: object) -> None:
    """Serve the sandbox; the first stdout line is the JSON connection info."""
    from smartsync_pipeline.sandbox.config import SandboxConfig
    from smartsync_pipeline.sandbox.qbo_time import parse_time
    from smartsync_pipeline.sandbox.serve import serve_forever

    try:
        config = SandboxConfig(**options)  # type: ignore[arg-type]
        if config.start_time is not None:
            parse_time(config.start_time)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        code = serve_forever(config)
    except (OSError, RuntimeError) as exc:  # port taken, host not local, state file of another sandbox
        raise click.ClickException(" ".join(str(exc).split()) or type(exc).__name__) from None
    raise SystemExit(code)


def _service() -> tuple[Home, SandboxService]:
    from smartsync_pipeline.sandbox.service import SandboxService

    home = Home.from_env()
    return home, SandboxService(home.root / "sandbox")


@sandbox.command("start")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="port to serve on")
@click.option("--scale", type=click.Choice(sorted(SCALES)), default="small", show_default=True, help="company size")
@click.option("--seed", type=int, default=7, show_default=True, help="seed of the generated company data")
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default=DEFAULT_PROFILE,
    show_default=True,
    help="healthy (most documents paid on time) or struggling (overdue payables above cash) books",
)
@click.option("--connect", is_flag=True, help="also connect its company to SMARTSYNC_HOME (if not connected yet)")
@friendly_errors
def start(port: int, scale: str, seed: int, profile: str, connect: bool) -> None:
    """Run the sandbox in the background (survives this shell); the demo's company if there was a demo."""
    from smartsync_pipeline.sandbox.service import SandboxServiceError

    home, service = _service()
    saved = service.saved_settings()
    try:
        status = service.start(scale=scale, seed=seed, port=port, profile=profile)
    except SandboxServiceError as exc:
        raise click.ClickException(str(exc)) from None
    if saved is not None:
        click.echo(
            f"company from {service.folder / 'demo.json'}: scale {saved.scale}, seed {saved.seed}, "
            f"profile {saved.profile}"
        )
    click.echo(status.describe())
    if connect:
        click.echo(connect_service_company(home, service))
    click.echo("stop it with `smartsync sandbox stop`; its log: " + str(service.folder / "service.log"))


def connect_service_company(home: Home, service: SandboxService) -> str:
    """Connect the running service's company to ``home`` unless it is connected already."""
    from smartsync_pipeline.cli.company_commands import connect_company
    from smartsync_pipeline.qbo.credentials import CompanyStore

    info = service.info()
    realm = info["realm_id"]
    if realm in CompanyStore(home).realms():
        from smartsync_pipeline.defs.partitions import register_realm

        return f"company {realm} is already connected (Dagster partition registered: {register_realm(realm)})"
    summary = connect_company(
        home, realm_id=realm, api_base=info["api_base"], token_url=info["token_url"], client_id=info["client_id"],
        client_secret=info["client_secret"], refresh_token=info["refresh_token"],
        webhook_verifier=info.get("webhook_verifier"), name="Sandbox Co.",
    )  # fmt: skip
    return (
        f"connected company {realm} ({summary['accounts']} accounts; "
        f"Dagster partition registered: {summary['dagster_partition']})"
    )


@sandbox.command("status")
@friendly_errors
def status() -> None:
    """Say whether the background sandbox runs, and where; exit 3 when it does not."""
    _, service = _service()
    current = service.status()
    click.echo(current.describe())
    if not current.running:
        click.echo("start it with `smartsync sandbox start`")
        raise SystemExit(3)


@sandbox.command("stop")
@friendly_errors
def stop() -> None:
    """Stop the background sandbox (its company and data stay for the next start)."""
    _, service = _service()
    was = service.stop()
    click.echo(f"stopped the sandbox (pid {was.pid})" if was.running else "the sandbox was not running")

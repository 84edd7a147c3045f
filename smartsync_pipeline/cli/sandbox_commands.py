"""``smartsync sandbox ...``: run the local QBO-compatible sandbox."""

from __future__ import annotations

import click

from smartsync_pipeline.sandbox.company import SCALES


@click.group()
def sandbox() -> None:
    """The local QBO-compatible sandbox server."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--scale", type=click.Choice(sorted(SCALES)), default="small", show_default=True)
@click.option("--realms", type=int, default=1, show_default=True)
@click.option("--state-file", type=click.Path(dir_okay=False), default=None, help="Journal to survive restarts.")
@click.option("--per-window", type=int, default=500, show_default=True, help="Requests per window per realm.")
@click.option("--window-seconds", type=float, default=60.0, show_default=True)
@click.option("--max-concurrent", type=int, default=10, show_default=True)
@click.option("--rotation-grace-seconds", type=float, default=0.0, show_default=True)
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

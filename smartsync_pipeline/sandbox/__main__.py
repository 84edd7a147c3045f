"""``python -m smartsync_pipeline.sandbox serve ...``: run the sandbox until SIGTERM / Ctrl-C.

The first stdout line is the JSON connection info (tokens included — that line is the contract with
whoever started the process); logs go to stderr and never carry secrets.
"""

from __future__ import annotations

import argparse
import sys

from smartsync_pipeline.sandbox.company import DEFAULT_PROFILE, PROFILES, SCALES
from smartsync_pipeline.sandbox.config import SandboxConfig
from smartsync_pipeline.sandbox.serve import serve_forever


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m smartsync_pipeline.sandbox")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the QBO-compatible sandbox")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--scale", choices=sorted(SCALES), default="small")
    serve.add_argument(
        "--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE, help="healthy or struggling books"
    )
    serve.add_argument("--realms", type=int, default=1)
    serve.add_argument("--state-file", default=None, help="journal writes and tokens here; replayed on start")
    serve.add_argument("--per-window", type=int, default=500)
    serve.add_argument("--window-seconds", type=float, default=60.0)
    serve.add_argument("--max-concurrent", type=int, default=10)
    serve.add_argument("--rotation-grace-seconds", type=float, default=0.0)
    serve.add_argument("--rotation-interval-seconds", type=float, default=0.0, help="Intuit: 86400")
    serve.add_argument("--start-time", default=None, help="ISO time for the sandbox clock (default: now)")
    serve.add_argument("--freeze", action="store_true", help="stop real time from moving the sandbox clock")
    serve.add_argument("--access-log", action="store_true", help="log every request line to stderr")
    serve.add_argument("--parent-pid", type=int, default=None, help="stop when this process has exited")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k != "command"}
    return serve_forever(SandboxConfig(**options))


if __name__ == "__main__":
    sys.exit(main())

"""Which coordination backend is configured, and the name that keeps one home's locks apart from another's.

``SMARTSYNC_COORDINATION`` unset (or ``local``) keeps the single-machine default: file locks under the
home. A ``postgresql://`` URL moves company locks and the QBO limiter into that database. Every key
is prefixed with the home's namespace, a random id stored once in the home itself, so hosts that mount
the shared storage path at different places agree on it, and two homes using one database (two
deployments, or the test sessions of several people) never share a lock.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from smartsync_pipeline.durable_files import make_private_dirs
from smartsync_pipeline.home import Home

COORDINATION_ENV = "SMARTSYNC_COORDINATION"
LOCAL = ("", "local", "file", "files")
NAMESPACE_FILE = "coordination-id"


class CoordinationConfigError(ValueError):
    """SMARTSYNC_COORDINATION names something smartsync cannot coordinate through."""


def coordination_url(environ: dict[str, str] | None = None) -> str | None:
    """The PostgreSQL URL to coordinate through, or None for the file-based single-machine default."""
    value = (environ if environ is not None else os.environ).get(COORDINATION_ENV, "").strip()
    if value.lower() in LOCAL:
        return None
    if value.startswith(("postgresql://", "postgres://")):
        return value
    if value.startswith("postgresql+psycopg2://"):  # the form SMARTSYNC_PG_URL uses: one URL serves both
        return "postgresql://" + value.removeprefix("postgresql+psycopg2://")
    shown = value.split("://", 1)[0] + "://…" if "://" in value else "that value"  # never echo credentials
    raise CoordinationConfigError(
        f"{COORDINATION_ENV} must be a postgresql:// URL or 'local' (got {shown}); "
        "unset it to coordinate through files on one machine"
    )


def home_namespace(home: Home) -> str:
    """The home's coordination namespace: created once (first writer wins), then only read."""
    path: Path = home.root / NAMESPACE_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    make_private_dirs(home.root)
    candidate = uuid.uuid4().hex
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read_settled(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(candidate + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return candidate


def _read_settled(path: Path) -> str:
    """The id another process is writing right now (a few bytes; retried until complete)."""
    for _ in range(1000):
        text = path.read_text().strip()
        if len(text) == 32:
            return text
        os.sched_yield()
    raise CoordinationConfigError(f"{path} does not hold a coordination id; remove it to start a new one")

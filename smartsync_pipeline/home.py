"""Where smartsync keeps its state: everything lives under ``SMARTSYNC_HOME`` (default ``./.smartsync``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    """The layout of one smartsync state directory."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def from_env(cls) -> Home:
        return cls(Path(os.environ.get("SMARTSYNC_HOME", ".smartsync")).resolve())

    def ensure(self) -> Home:
        for d in (self.root, self.companies_dir, self.locks_dir, self.snapshots_dir, self.archive_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    @property
    def companies_dir(self) -> Path:
        """One connection file (encrypted credentials) per company."""
        return self.root / "companies"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    @property
    def mirror_path(self) -> Path:
        """The write side: only the sync engine opens it."""
        return self.root / "mirror.duckdb"

    @property
    def snapshots_dir(self) -> Path:
        """Published read-only copies of the mirror, one file per generation."""
        return self.root / "snapshots"

    @property
    def analyst_path(self) -> Path:
        """What analysts open: a link to the newest published snapshot."""
        return self.root / "analyst.duckdb"

    @property
    def inbox_path(self) -> Path:
        """Webhook events, stored durably before the endpoint answers (SQLite, not the mirror)."""
        return self.root / "inbox.sqlite"

    @property
    def archive_dir(self) -> Path:
        """Append-only Parquet export of the change log, one folder per day."""
        return self.root / "archive"

    @property
    def key_path(self) -> Path:
        """Encryption key for credentials at rest, when ``SMARTSYNC_SECRET_KEY`` is not set."""
        return self.root / "secret.key"

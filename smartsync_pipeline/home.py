"""Where smartsync keeps its state: everything lives under ``SMARTSYNC_HOME`` (default ``./.smartsync``).

Each connected company is a shard of its own (``realms/<realm>/``): its mirror file, published
snapshots, locks and change-log archive. What is shared by the whole home is small and never on a
sync's hot path: encrypted credentials, the webhook inbox, the fleet state index and the analyst
entry point. ARCHITECTURE.md ("Storage layout: one shard per company") says why.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REALM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class RealmNotFound(LookupError):
    """No company (or more than one) matches what the caller asked for."""


def check_realm_id(realm_id: str) -> str:
    """``realm_id`` if it is a safe folder name (letters, digits, ``-``, ``_``), else ValueError."""
    if not isinstance(realm_id, str) or not REALM_ID.match(realm_id):
        raise ValueError(f"invalid realm id {realm_id!r}: expected letters, digits, '-' or '_'")
    return realm_id


@dataclass(frozen=True)
class RealmHome:
    """The layout of one company's shard: nothing in it is read or written for another company."""

    home: Home
    realm_id: str

    @property
    def root(self) -> Path:
        return self.home.realms_dir / self.realm_id

    def ensure(self) -> RealmHome:
        """Create the shard's folders; the shard itself is 0700 (only smartsync's account opens the
        write-side file; analysts read snapshots through ``analyst.sql``)."""
        self.home.ensure()
        for d in (self.root, self.locks_dir, self.snapshots_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.root.stat().st_mode & 0o077:
            os.chmod(self.root, 0o700)
        return self

    @property
    def mirror_path(self) -> Path:
        """The write side: only the sync engine opens it (0600)."""
        return self.root / "mirror.duckdb"

    @property
    def snapshots_dir(self) -> Path:
        """Published read-only (0444) copies of the mirror, one file per generation, and CURRENT."""
        return self.root / "snapshots"

    @property
    def current_link(self) -> Path:
        """A symlink to the newest published snapshot: what the analyst entry point ATTACHes."""
        return self.root / "current.duckdb"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    @property
    def archive_dir(self) -> Path:
        """Append-only Parquet export of the company's change log, one folder per day."""
        return self.root / "archive"

    @property
    def anchors_path(self) -> Path:
        """The company's change-log anchor (append-only JSON lines, 0600): its chain head written
        outside DuckDB, so a cut or rewritten tail shows (``mirror/anchors.py``)."""
        return self.root / "anchors.jsonl"

    @property
    def staging_dir(self) -> Path:
        """Scratch space of running syncs (full listings staged as Parquet)."""
        return self.root / "staging"

    @property
    def disconnected_marker(self) -> Path:
        """Present while the company is disconnected (its data kept): no sync, not in analyst.sql."""
        return self.root / "DISCONNECTED"

    @property
    def parked_credentials_dir(self) -> Path:
        """Where ``disconnect`` (without ``--purge``) keeps the company's credential files."""
        return self.root / "disconnected"


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
        for d in (self.root, self.companies_dir, self.locks_dir, self.realms_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    @property
    def companies_dir(self) -> Path:
        """One connection file (encrypted credentials) per company."""
        return self.root / "companies"

    @property
    def locks_dir(self) -> Path:
        """Home-wide locks (token refreshes, the QBO limiter, the analyst script); per-company sync
        locks live in the company's shard."""
        return self.root / "locks"

    @property
    def realms_dir(self) -> Path:
        """One shard per company: ``realms/<realm>/``."""
        return self.root / "realms"

    def realm(self, realm_id: str) -> RealmHome:
        return RealmHome(self, check_realm_id(realm_id))

    def realm_ids(self) -> list[str]:
        """Companies that have a shard (synced at least once, or being synced), sorted."""
        try:
            names = [p.name for p in self.realms_dir.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return []
        return sorted(n for n in names if REALM_ID.match(n))

    def only_realm(self, realm_id: str | None = None) -> RealmHome:
        """``realm_id``'s shard, or, when it is None, the shard of the only company there is (the
        one-company convenience the CLI offers with an optional ``--realm``)."""
        if realm_id is not None:
            return self.realm(realm_id)
        realms = self.realm_ids()
        if len(realms) == 1:
            return self.realm(realms[0])
        if not realms:
            raise RealmNotFound(f"no company has a mirror under {self.realms_dir} yet; run `smartsync sync` first")
        raise RealmNotFound(f"{len(realms)} companies have mirrors ({', '.join(realms[:5])}…); name one")

    @property
    def fleet_state_path(self) -> Path:
        """The fleet state index (SQLite, WAL): last sync per (company, entity), for sensors."""
        return self.root / "fleet_state.sqlite"

    @property
    def analyst_script_path(self) -> Path:
        """The analyst entry point: ATTACHes every company's newest snapshot and defines union views
        (``duckdb -init`` it, or use ``smartsync sql`` / ``mirror.analyst.connect()``)."""
        return self.root / "analyst.sql"

    @property
    def analyst_path(self) -> Path:
        """While exactly one company is connected: a link to its newest snapshot (a plain DuckDB file)."""
        return self.root / "analyst.duckdb"

    @property
    def inbox_path(self) -> Path:
        """Webhook events, stored durably before the endpoint answers (SQLite, not the mirror)."""
        return self.root / "inbox.sqlite"

    @property
    def key_path(self) -> Path:
        """Encryption key for credentials at rest, when ``SMARTSYNC_SECRET_KEY`` is not set."""
        return self.root / "secret.key"

"""The SQL door: a DuckDB connection that can read the attached snapshots and nothing else.

Opening a snapshot ``read_only`` protects that one database, not the machine: with DuckDB's
defaults a query can ``ATTACH`` the mirror read-write, ``COPY … TO`` over a token file, print
``secret.key`` with ``read_text``, install extensions or switch any of that back on with ``SET``.
``seal`` closes all of it on a connection whose databases are already open (open or ATTACH the
snapshots first, then seal; nothing can be attached afterwards):

- ``enable_external_access = false``: no COPY TO/FROM, file readers, extensions, secrets or scans of
  Python objects;
- ``disabled_filesystems = 'LocalFileSystem'``: DuckDB allows the paths of already attached files
  even without external access, so ``DETACH x; ATTACH '<x's file>' (READ_WRITE)`` would reopen a
  snapshot for writing; with the local file system off nothing can be opened by name at all (the
  attached files keep being read through their open handles);
- ``lock_configuration = true``: no ``SET``/``RESET``/``PRAGMA`` can undo the above.

The cost: a query that would spill to disk (bigger than DuckDB's memory limit) fails instead. See
ARCHITECTURE.md ("The SQL door").
"""

from __future__ import annotations

from pathlib import Path

import duckdb

# In order: extension loading off while it can still be changed, then external access, then the file
# system (after external access: switching that off needs the file system), then the lock.
_SEAL = (
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    "SET allow_persistent_secrets = false",
    "SET enable_external_access = false",
    "SET disabled_filesystems = 'LocalFileSystem'",
    "SET lock_configuration = true",
)


class SqlRefused(PermissionError):
    """A query tried to leave the snapshots: files, extensions, settings or a write."""


def seal(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Make ``con`` read-only for the machine (see the module docstring); returns ``con``."""
    for statement in _SEAL:
        con.execute(statement)
    return con


def open_sealed(path: Path | str) -> duckdb.DuckDBPyConnection:
    """``path`` opened read-only and sealed."""
    return seal(duckdb.connect(str(path), read_only=True))


def explain_refusal(exc: duckdb.Error) -> SqlRefused | None:
    """A ``SqlRefused`` with one clear line when ``exc`` is the seal (or read-only mode) refusing a
    query; None for ordinary SQL errors (syntax, unknown table, …)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, duckdb.PermissionException) or "disabled by configuration" in text:
        what = "files, extensions and secrets are out of reach"
    elif "configuration has been locked" in text:
        what = "settings cannot be changed"
    elif "read-only mode" in text or "read only mode" in text:
        what = "it cannot write"
    else:
        return None
    return SqlRefused(f"refused: the SQL door is read-only and {what} ({text})")


__all__ = ["SqlRefused", "explain_refusal", "open_sealed", "seal"]

"""Durability of files the mirror publishes: a copy or export is flushed to disk before it is renamed
or linked into place, so a crash never leaves a published name pointing at a partial file."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    """Flush ``path``'s content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

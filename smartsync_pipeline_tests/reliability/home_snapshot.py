"""Everything under a SMARTSYNC_HOME as comparable data, to prove that a refused command wrote nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def home_snapshot(root: Path) -> dict[str, str]:
    """Relative path -> what is there (directory, symlink target, or file content digest). A missing
    root is an empty snapshot; modification times are ignored, content is not."""
    if not root.exists():
        return {}
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            path = base / name
            found[str(path.relative_to(root))] = f"link {os.readlink(path)}" if path.is_symlink() else "dir"
        for name in filenames:
            path = base / name
            if path.is_symlink():
                found[str(path.relative_to(root))] = f"link {os.readlink(path)}"
            else:
                found[str(path.relative_to(root))] = "file " + hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def snapshot_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs, one line per path."""
    lines = [f"created {p}" for p in sorted(set(after) - set(before))]
    lines += [f"removed {p}" for p in sorted(set(before) - set(after))]
    lines += [f"changed {p}" for p in sorted(set(before) & set(after)) if before[p] != after[p]]
    return lines

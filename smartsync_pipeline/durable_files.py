"""The one way smartsync replaces a file: write a temporary sibling, flush it, rename it into place,
flush the folder. A crash (even SIGKILL) leaves the old or the new file whole, never half of one.

Temporary names carry the writer's pid (``.<name>.<pid>.<random>.tmp``), so the leftovers of a killed
writer can be recognised and removed by the next one (``remove_leftovers``).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

_TEMP = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")


def temp_path(path: Path) -> Path:
    """A fresh temporary name next to ``path`` (same folder, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def fsync_file(path: Path) -> None:
    """Flush ``path``'s content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename is durable only once its folder is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def install(tmp: Path, target: Path, *, mode: int | None = None) -> None:
    """Make the finished file ``tmp`` durable and rename it to ``target`` (optionally chmod first)."""
    if mode is not None:
        os.chmod(tmp, mode)
    fsync_file(tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def make_private_dirs(folder: Path) -> None:
    """``folder`` and any missing parent, each 0700 (``mkdir(parents=True)`` would make the parents
    with the umask's mode)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for p in reversed(missing):
        p.mkdir(mode=0o700, exist_ok=True)


def write_atomically(path: Path, data: bytes | str, *, mode: int = 0o600, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers (and a crash) see the old or the new file, whole.
    The file is created with ``mode`` (0600 unless asked otherwise); missing folders are made 0700.
    ``sync_dir=False`` leaves flushing the folder (the rename's durability) to the caller's next write
    in the same folder."""
    make_private_dirs(path.parent)
    payload = data.encode() if isinstance(data, str) else data
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def point_symlink(link: Path, target: Path) -> bool:
    """Atomically make ``link`` a relative symlink to ``target``; True when ``link`` did not exist."""
    existed = link.is_symlink() or link.exists()
    tmp = temp_path(link)
    os.symlink(os.path.relpath(target, link.parent), tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return not existed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(directory: Path, *, all_writers_done: bool = False) -> list[Path]:
    """Remove temporary files a killed writer left in ``directory``: those whose writer process is
    gone, or every one when the caller holds the lock all writers of that folder take
    (``all_writers_done``). Returns what was removed."""
    removed = []
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is None and not (all_writers_done and entry.name.endswith(".tmp")):  # older writers' names too
            continue
        if all_writers_done or (m is not None and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1)))):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_dir() and not entry.is_symlink():
                    continue
                entry.unlink()
                removed.append(entry)
    return removed

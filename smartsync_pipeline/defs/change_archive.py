"""Append-only Parquet archive of the change log, one folder per day of ``recorded_at`` (UTC).

Each export writes the changes after the previously exported id, split by day, as
``date=YYYY-MM-DD/changes-<first>-<last>.parquet``. Files are written under a temporary name and
hard-linked into place, which fails instead of replacing an existing file: nothing already archived
is ever rewritten. Change rows never change, so a file that already exists (an export that crashed
before Dagster recorded it) holds exactly the rows it is named after and is kept as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from smartsync_pipeline.durable_files import fsync_file
from smartsync_pipeline.mirror.anchors import spans
from smartsync_pipeline.mirror.sql import sql_literal

_DAY = "CAST(timezone('UTC', recorded_at) AS DATE)"


@dataclass(frozen=True)
class ArchiveFile:
    path: Path
    day: date
    first_change_id: int
    last_change_id: int
    rows: int
    already_existed: bool = False


@dataclass
class ArchiveExport:
    """What one export wrote (or found already written)."""

    after_change_id: int
    files: list[ArchiveFile] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def last_change_id(self) -> int:
        return max((f.last_change_id for f in self.files), default=self.after_change_id)


def archive_file_path(archive_dir: Path, day: date, first: int, last: int) -> Path:
    return archive_dir / f"date={day.isoformat()}" / f"changes-{first:012d}-{last:012d}.parquet"


def export_changes(
    con: duckdb.DuckDBPyConnection, archive_dir: Path, *, after_change_id: int, through_change_id: int
) -> ArchiveExport:
    """Write change rows with ``after_change_id < change_id <= through_change_id`` to the archive."""
    export = ArchiveExport(after_change_id)
    if through_change_id <= after_change_id:
        return export
    days = con.execute(
        f"SELECT {_DAY} AS day, min(change_id), max(change_id), count(*) FROM change_log "
        "WHERE change_id > ? AND change_id <= ? GROUP BY day ORDER BY min(change_id)",
        [after_change_id, through_change_id],
    ).fetchall()
    for day, first, last, rows in days:
        target = archive_file_path(archive_dir, day, int(first), int(last))
        if target.exists():
            export.files.append(ArchiveFile(target, day, int(first), int(last), int(rows), already_existed=True))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            con.execute(
                f"COPY (SELECT * FROM change_log WHERE change_id BETWEEN {int(first)} AND {int(last)} "
                f"AND {_DAY} = DATE '{day.isoformat()}' ORDER BY change_id) "
                f"TO {sql_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)"
            )
            fsync_file(tmp)
            os.link(tmp, target)  # FileExistsError rather than overwrite
        finally:
            tmp.unlink(missing_ok=True)
        export.files.append(ArchiveFile(target, day, int(first), int(last), int(rows)))
    return export


def verify_archive(con: duckdb.DuckDBPyConnection, archive_dir: Path) -> tuple[int, list[str]]:
    """Every archived change must still be in the change log with the same row hash: the archive is
    an independent copy of old rows, so a cut or rewritten tail that the chain alone cannot show
    shows here. Returns (archived rows checked, one sentence per disagreement)."""
    files = sorted(str(p) for p in archive_dir.glob("date=*/changes-*.parquet"))
    if not files:
        return 0, []
    archived = f"read_parquet({sql_literal_list(files)})"
    checked = con.execute(f"SELECT count(*) FROM {archived}").fetchall()[0][0]
    rows = con.execute(
        f"SELECT a.change_id, c.row_hash IS NULL FROM {archived} a LEFT JOIN change_log c USING (change_id) "
        "WHERE c.row_hash IS DISTINCT FROM a.row_hash ORDER BY a.change_id"
    ).fetchall()
    missing = [int(cid) for cid, gone in rows if gone]
    rewritten = [int(cid) for cid, gone in rows if not gone]
    problems = []
    if missing:
        problems.append(f"the archive holds changes the change log no longer has: {spans(missing)}")
    if rewritten:
        problems.append(f"changes differ from their archived copy (rewritten): {spans(rewritten)}")
    return int(checked), problems


def sql_literal_list(items: list[str]) -> str:
    return "[" + ", ".join(sql_literal(i) for i in items) + "]"

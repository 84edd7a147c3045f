"""Row-by-row comparison of the mirror with the sandbox (shared by sync, smart-read and soak tests)."""

from __future__ import annotations

import json
from typing import Any

from smartsync_pipeline.entities import iter_entities
from smartsync_pipeline.mirror.snapshots import SnapshotReader


def mirror_rows(home: Any, realm_id: str, table: str) -> dict[str, dict[str, Any]]:
    reader = SnapshotReader(home)
    try:
        with reader.cursor(realm_id=realm_id) as (cur, _):
            rows = cur.execute(
                f"SELECT id, sync_token, is_deleted, raw FROM {table} WHERE realm_id = ?", [realm_id]
            ).fetchall()
    finally:
        reader.close()
    return {r[0]: {"sync_token": r[1], "is_deleted": r[2], "raw": json.loads(r[3])} for r in rows}


def mirror_differences(company: Any, entities: list[str] | None = None) -> dict[str, list[str]]:
    """Every way the newest snapshot differs from the sandbox's own data; {} when equal."""
    problems: dict[str, list[str]] = {}
    for spec in iter_entities(entities):
        truth = company.sandbox_objects(spec.name)
        mirror = mirror_rows(company.home, company.realm_id, spec.table)
        live = {k: v for k, v in mirror.items() if not v["is_deleted"]}
        found: list[str] = []
        for obj in truth["active"]:
            row = live.get(str(obj["Id"]))
            if row is None:
                found.append(f"{obj['Id']} missing from the mirror")
            elif row["raw"] != obj:
                keys = sorted(k for k in set(obj) | set(row["raw"]) if obj.get(k) != row["raw"].get(k))
                found.append(f"{obj['Id']} differs in {keys}")
        active_ids = {str(o["Id"]) for o in truth["active"]}
        found += [f"{i} is live in the mirror but not in QBO" for i in sorted(set(live) - active_ids)]
        if found:
            problems[spec.name] = found
    return problems

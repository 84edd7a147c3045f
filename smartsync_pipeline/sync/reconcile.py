"""Mirror vs QBO: do both hold the same objects, at the same versions?

Counts-only mode asks QBO for ``COUNT(*)`` (cheap: one call per entity); the full mode pages every
object and compares ids and SyncTokens, which is what proves the mirror equals the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smartsync_pipeline.entities import EntitySpec, iter_entities
from smartsync_pipeline.mirror.snapshots import SnapshotInfo, SnapshotReader


@dataclass
class EntityReconciliation:
    entity: str
    qbo_count: int
    mirror_count: int
    missing_in_mirror: list[str] = field(default_factory=list)
    extra_in_mirror: list[str] = field(default_factory=list)
    version_mismatch: list[str] = field(default_factory=list)  # same id, different SyncToken

    @property
    def equal(self) -> bool:
        return (
            self.qbo_count == self.mirror_count
            and not self.missing_in_mirror
            and not self.extra_in_mirror
            and not self.version_mismatch
        )

    def describe(self, limit: int = 5) -> str:
        parts = [f"QBO {self.qbo_count} vs mirror {self.mirror_count}"]
        for label, ids in (
            ("missing in mirror", self.missing_in_mirror),
            ("only in mirror", self.extra_in_mirror),
            ("different SyncToken", self.version_mismatch),
        ):
            if ids:
                more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
                parts.append(f"{label}: {', '.join(ids[:limit])}{more}")
        return "; ".join(parts)


@dataclass
class ReconcileReport:
    realm_id: str
    snapshot_generation: int | None
    entities: dict[str, EntityReconciliation]

    @property
    def equal(self) -> bool:
        return all(e.equal for e in self.entities.values())


def _mirror_versions(reader: SnapshotReader, info: SnapshotInfo, spec: EntitySpec, realm_id: str) -> dict[str, str]:
    with reader.cursor(info) as (cur, _):
        rows = cur.execute(
            f"SELECT id, sync_token FROM {spec.table} WHERE realm_id = ? AND NOT is_deleted", [realm_id]
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def reconcile(
    client: Any,
    reader: SnapshotReader,
    realm_id: str,
    entities: Sequence[str] | None = None,
    *,
    compare_ids: bool = True,
) -> ReconcileReport:
    """Compare the newest published mirror snapshot with QBO for ``entities`` (default: all)."""
    info = reader.current(realm_id)
    if info is None:
        raise FileNotFoundError("nothing has been synced yet; run `smartsync sync` first")
    out: dict[str, EntityReconciliation] = {}
    for spec in iter_entities(list(entities) if entities else None):
        inactive = True if spec.name_list else None
        mirror = _mirror_versions(reader, info, spec, realm_id)
        if not compare_ids:
            qbo_count = client.count(spec.name, include_inactive=inactive)
            out[spec.name] = EntityReconciliation(spec.name, qbo_count, len(mirror))
            continue
        qbo: dict[str, str] = {}
        for page in client.iter_pages(spec.name, include_inactive=inactive):
            for obj in page:
                qbo[str(obj["Id"])] = str(obj.get("SyncToken"))
        out[spec.name] = EntityReconciliation(
            spec.name,
            len(qbo),
            len(mirror),
            missing_in_mirror=sorted(set(qbo) - set(mirror), key=_num),
            extra_in_mirror=sorted(set(mirror) - set(qbo), key=_num),
            version_mismatch=sorted((i for i in set(qbo) & set(mirror) if qbo[i] != mirror[i]), key=_num),
        )
    return ReconcileReport(realm_id, info.generation, out)


def _num(qbo_id: str) -> tuple[int, str]:
    return (int(qbo_id), "") if qbo_id.isdigit() else (0, qbo_id)

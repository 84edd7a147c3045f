"""Why a mirror figure differs from QBO's report: the documents QBO changed after the mirror's last sync.

A difference between the mirror and one of QBO's reports has two usual causes: QBO moved on since
the mirror's last sync (a lag that ``smartsync sync`` fixes), or the two really disagree. One CDC call
for the figure's entities, since the oldest of their sync watermarks, lists what QBO changed; every
changed document the mirror does not hold at the same SyncToken is assigned to the differences it
moves (the vendor or customer it names, the month it is dated in, the bank account it touches) and
named there. A difference no change explains keeps the mirror's documents behind it and says so.
See ARCHITECTURE.md, "Reconciliation with QBO's reports".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import duckdb

from smartsync_pipeline.entities.registry import find_entity
from smartsync_pipeline.sync.report_reconciliation import Comparison, Reconciliation

# The watermark is the server time of the last CDC answer; look a little further back so a change
# committed during that answer is not missed (documents the mirror already holds are filtered out).
CDC_MARGIN = timedelta(minutes=2)


@dataclass(frozen=True)
class ChangedDocument:
    """A document QBO holds differently from the mirror."""

    entity: str  # QBO name: "Bill"
    id: str
    change: str  # "created", "edited (SyncToken 1 -> 2)", "deleted"
    doc: dict[str, Any]  # QBO's object (the mirror's last copy for a deleted one)
    previous: dict[str, Any] | None = None  # the mirror's copy of an edited one (it may have moved month or party)

    @property
    def label(self) -> str:
        return f"{self.entity} {self.id} ({self.change} in QBO)"


@dataclass
class QBOChanges:
    """What QBO changed after the mirror's last sync, for some entities."""

    since: datetime | None
    documents: list[ChangedDocument]
    note: str = ""  # why nothing could be asked, or that the answer was capped


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return json.loads(value) if value else {}


def _watermark(con: duckdb.DuckDBPyConnection, realm_id: str, entities: list[str]) -> datetime | None:
    marks = con.execute(
        "SELECT min(coalesce(watermark, last_sync_at)) FROM sync_state WHERE realm_id = ? AND entity IN "
        f"({', '.join('?' for _ in entities)})",
        [realm_id, *entities],
    ).fetchone()
    return marks[0] if marks else None


def changes_since_sync(
    con: duckdb.DuckDBPyConnection, client: Any, realm_id: str, entities: tuple[str, ...]
) -> QBOChanges:
    """Ask QBO (one CDC call) what changed in ``entities`` since the mirror's last sync of them, and
    keep what the mirror in ``con`` does not hold at the same SyncToken."""
    specs = [s for s in (find_entity(e) for e in entities) if s is not None]
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    specs = [s for s in specs if s.table in tables]
    if not specs:
        return QBOChanges(None, [], "none of the figure's entities is mirrored")
    since = _watermark(con, realm_id, [s.name for s in specs])
    if since is None:
        return QBOChanges(None, [], "the mirror has not synced these entities yet; run `smartsync sync`")
    try:
        cdc = client.cdc([s.name for s in specs], since - CDC_MARGIN)
    except Exception as exc:  # an explanation is a bonus: the comparison itself stands without it
        return QBOChanges(since, [], f"could not ask QBO what changed since {since:%Y-%m-%d %H:%M} UTC "
                                     f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")  # fmt: skip
    found: list[ChangedDocument] = []
    for spec in specs:
        changes = cdc.entities.get(spec.name)
        if changes is None or not changes.count:
            continue
        ids = [str(d.get("Id")) for d in (*changes.active, *changes.deleted)]
        held = {
            str(i): (token, deleted, raw)
            for i, token, deleted, raw in con.execute(
                f"SELECT id, raw->>'$.SyncToken', is_deleted, raw FROM {spec.table} WHERE realm_id = ? "
                f"AND id IN ({', '.join('?' for _ in ids)})",
                [realm_id, *ids],
            ).fetchall()
        }
        for doc in changes.active:
            doc_id, token = str(doc.get("Id")), str(doc.get("SyncToken"))
            mine = held.get(doc_id)
            if mine is None or mine[1]:
                found.append(ChangedDocument(spec.name, doc_id, "created", doc))
            elif mine[0] != token:
                found.append(ChangedDocument(spec.name, doc_id, f"edited (SyncToken {mine[0]} -> {token})", doc,
                                             _json(mine[2])))  # fmt: skip
        for doc in changes.deleted:
            mine = held.get(str(doc.get("Id")))
            if mine is not None and not mine[1]:
                found.append(ChangedDocument(spec.name, str(doc.get("Id")), "deleted", _json(mine[2])))
    note = f"QBO changed {len(found)} document(s) after the mirror's last sync ({since:%Y-%m-%d %H:%M} UTC)"
    if cdc.is_full:
        note += "; QBO's answer was capped at 1,000 objects, so some may be missing"
    return QBOChanges(since, found, note)


def _moves(comparison: Comparison, change: ChangedDocument, key: str) -> bool:
    """Does this change move the figure ``key``: the document (as QBO has it, or as the mirror had it)
    belongs to the figure, and for an edit, a field the figure depends on changed."""
    if change.previous is None:
        return comparison.moves(change.entity, change.doc, key)
    if not comparison.edit_matters(change.doc, change.previous):
        return False
    return comparison.moves(change.entity, change.doc, key) or comparison.moves(change.entity, change.previous, key)


def explain(result: Reconciliation, comparison: Comparison, changes: QBOChanges) -> Reconciliation:
    """``result`` with each difference naming the QBO changes that move it (or saying none does)."""
    if result.ok:
        return result
    explained: list = []
    for d in result.differences:
        docs = [c for c in changes.documents if _moves(comparison, c, d.key)]
        if docs:
            explained.append(replace(
                d, documents=tuple(c.label for c in docs),
                cause="QBO changed after the mirror's last sync: `smartsync sync` brings the mirror up to date",
            ))  # fmt: skip
        elif changes.since is not None and not changes.note.startswith("could not"):
            explained.append(replace(
                d, cause="no change in QBO since the mirror's last sync explains it: the mirror and QBO disagree "
                         "on the documents named",
            ))  # fmt: skip
        else:
            explained.append(d)
    return replace(result, differences=explained, note=changes.note)


def reconcile_with_report(
    con: duckdb.DuckDBPyConnection,
    realm_id: str,
    comparison: Comparison,
    period_key: str | None = None,
    *,
    client: Any = None,
) -> Reconciliation:
    """Run ``comparison`` on ``con``; when it differs and a QBO ``client`` is given, name the QBO
    changes since the mirror's last sync that explain each difference."""
    result = comparison.run(con, realm_id, period_key)
    if result.ok or client is None:
        return result
    return explain(result, comparison, changes_since_sync(con, client, realm_id, comparison.entities))


__all__ = ["CDC_MARGIN", "ChangedDocument", "QBOChanges", "changes_since_sync", "explain", "reconcile_with_report"]

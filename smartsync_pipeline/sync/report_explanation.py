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
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import duckdb

from smartsync_pipeline.entities.registry import DATE, MONEY, find_entity
from smartsync_pipeline.qbo.errors import QBOError, QueryError
from smartsync_pipeline.sync.report_reconciliation import Comparison, Difference, Reconciliation

CENT = Decimal("0.01")

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


def _money_or_date(value: Any, col_type: str) -> Any:
    if value is None or value == "":
        return None
    try:
        if col_type == MONEY:
            return Decimal(str(value)).quantize(CENT)
        return date.fromisoformat(str(value)[:10])
    except (InvalidOperation, ValueError):
        return str(value)


def _at(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def disagreeing_documents(
    con: duckdb.DuckDBPyConnection, client: Any, realm_id: str, comparison: Comparison, key: str
) -> list[str]:
    """The documents behind one figure (``key``) on which QBO and the mirror disagree, read from QBO
    now: present on one side only, or differing in a field (raw or typed column) the figure uses."""
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    named: list[str] = []
    for spec in (s for s in (find_entity(e) for e in comparison.entities) if s is not None and s.table in tables):
        scope = comparison.scope(spec.name, key)
        if scope is None:
            continue
        try:
            qbo = {str(d.get("Id")): d for d in client.query_all(spec.name, where=scope.where)}
        except QueryError:  # this entity cannot be filtered that way in QBO's query language
            continue
        except QBOError as exc:  # QBO unreachable: say so instead of failing the whole comparison
            named.append(f"{spec.name}: not compared, QBO did not answer ({type(exc).__name__})")
            continue
        typed = [c for c in spec.columns if c.type in (MONEY, DATE) and c.path.split(".")[0] in comparison.fields]
        columns = "".join(f", {c.name}" for c in typed)
        rows = con.execute(
            f"SELECT id, raw{columns} FROM {spec.table} WHERE realm_id = ? AND NOT is_deleted AND "
            f"(({scope.sql}) OR id IN (SELECT unnest(?::VARCHAR[])))",
            [realm_id, *scope.params, list(qbo)],
        ).fetchall()
        mirror = {str(r[0]): (_json(r[1]), r[2:]) for r in rows}
        for doc_id in sorted(set(qbo) | set(mirror), key=lambda i: (len(i), i)):
            if doc_id not in mirror:
                named.append(f"{spec.name} {doc_id} (in QBO, not in the mirror)")
                continue
            if doc_id not in qbo:
                named.append(f"{spec.name} {doc_id} (in the mirror, not in QBO's {comparison.title} documents)")
                continue
            raw, values = mirror[doc_id]
            what = [f"{c.name}: mirror {m} vs QBO {q}" for c, m in zip(typed, values, strict=True)
                    if (q := _money_or_date(_at(qbo[doc_id], c.path), c.type)) != m]  # fmt: skip
            shown = {c.path.split(".")[0] for c, m in zip(typed, values, strict=True)
                     if _money_or_date(_at(qbo[doc_id], c.path), c.type) != m}  # fmt: skip
            what += [f"{f} differs" for f in comparison.fields if f not in shown and qbo[doc_id].get(f) != raw.get(f)]
            if what:
                named.append(f"{spec.name} {doc_id} ({'; '.join(what)})")
    return named


LAG = "QBO changed after the mirror's last sync: `smartsync sync` brings the mirror up to date"
STALE_REPORT = "the stored report is older than the mirror's last sync"
DISAGREEMENT = ("no change in QBO since the mirror's last sync explains it: the mirror and QBO disagree on the "
                "documents named (`smartsync reconcile --deep` repairs rows edited outside smartsync)")  # fmt: skip
UNEXPLAINED = (
    "no change in QBO since the mirror's last sync explains it, and QBO's documents behind the figure equal "
    "the mirror's: the difference is in how the figure is derived (the mirror's documents named)"
)
MAX_INVESTIGATED = 10  # differing figures whose documents are compared one by one with QBO's


def explain(
    result: Reconciliation,
    comparison: Comparison,
    changes: QBOChanges,
    investigate: Callable[[str], list[str]] | None = None,
) -> Reconciliation:
    """``result`` with each difference naming the QBO changes that move it; a difference no change
    explains names what ``investigate(key)`` finds (QBO's documents vs the mirror's), else says so."""
    if result.ok:
        return result
    explained: list[Difference] = []
    investigated: dict[str, list[str]] = {}
    for d in result.differences:
        docs = [c for c in changes.documents if _moves(comparison, c, d.key)]
        if docs:
            explained.append(replace(
                d, documents=tuple(c.label for c in docs), cause=LAG,
            ))  # fmt: skip
            continue
        if changes.since is None or changes.note.startswith("could not"):
            explained.append(d)
            continue
        if investigate is not None and (d.key in investigated or len(investigated) < MAX_INVESTIGATED):
            if d.key not in investigated:
                investigated[d.key] = investigate(d.key)
            if investigated[d.key]:
                explained.append(replace(d, documents=tuple(investigated[d.key]), cause=DISAGREEMENT))
                continue
            explained.append(replace(d, cause=UNEXPLAINED))
            continue
        explained.append(replace(d, cause="no change in QBO since the mirror's last sync explains it"))
    return replace(result, differences=explained, note=changes.note)


def is_lag(difference: Difference) -> bool:
    """A difference that syncing the mirror or re-running the report will clear (not a disagreement)."""
    return difference.cause.startswith((LAG, STALE_REPORT))


def _stale_report(con: duckdb.DuckDBPyConnection, realm_id: str, comparison: Comparison, period_key: str | None) -> str:
    """A cause when the stored report was fetched before the mirror's last sync of the figure's
    entities (comparing them says nothing about either), else ""."""
    key = period_key or ("current" if comparison.report != "ProfitAndLoss" else None)
    fetched = con.execute(
        "SELECT min(fetched_at) FROM (SELECT period_key, arg_max(fetched_at, run_seq) AS fetched_at FROM report_run "
        "WHERE realm_id = ? AND report = ? AND (? IS NULL OR period_key = ?) GROUP BY period_key)",
        [realm_id, comparison.report, key, key],
    ).fetchone()[0]
    names = [s.name for s in (find_entity(e) for e in comparison.entities) if s is not None]
    synced = con.execute(
        f"SELECT max(last_sync_at) FROM sync_state WHERE realm_id = ? AND entity IN ({', '.join('?' for _ in names)})",
        [realm_id, *names],
    ).fetchone()[0] if names else None  # fmt: skip
    if fetched is None or synced is None or fetched >= synced:
        return ""
    return (f"{STALE_REPORT} ({comparison.report} fetched {fetched:%Y-%m-%d %H:%M:%S} UTC, mirror synced "
            f"{synced:%Y-%m-%d %H:%M:%S} UTC): run the report again")  # fmt: skip


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
    if result.ok or client is None or not result.differences:  # nothing compared: nothing to explain
        return result
    stale = _stale_report(con, realm_id, comparison, period_key)
    if stale:
        return replace(result, differences=[replace(d, cause=stale) for d in result.differences],
                       note="not looked up in QBO: " + stale)  # fmt: skip
    changes = changes_since_sync(con, client, realm_id, comparison.entities)
    return explain(
        result, comparison, changes, lambda key: disagreeing_documents(con, client, realm_id, comparison, key)
    )


__all__ = [
    "CDC_MARGIN",
    "ChangedDocument",
    "QBOChanges",
    "changes_since_sync",
    "disagreeing_documents",
    "explain",
    "is_lag",
    "reconcile_with_report",
]

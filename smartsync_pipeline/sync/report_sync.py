"""Fetch a QBO report completely and store it: the report counterpart of the sync engine.

``ReportSync.run`` asks QBO through the company's client (``qbo/reports.py`` splits long or truncated
ranges), turns the parts into tidy cells, and writes them with the run's content hash into the mirror
(``mirror/report_store.py``). Dagster's report assets, the CLI and tests call it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from smartsync_pipeline.entities.reports import AS_OF, ReportSpec, report
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.change_log import TRIGGERS
from smartsync_pipeline.mirror.report_store import ReportStore
from smartsync_pipeline.mirror.reports import ReportRun, StoredRun
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.reports import ReportResult, ReportRunner
from smartsync_pipeline.sync.errors import SyncError

log = logging.getLogger("smartsync.sync.reports")

CURRENT_KEY = "current"


@dataclass(frozen=True)
class ReportOutcome:
    """A stored report run: what QBO said (``result``), what was stored and where it is visible."""

    result: ReportResult
    run: ReportRun
    stored: StoredRun
    snapshot_generation: int

    def grand_totals(self) -> dict[str, dict[str, str]]:
        """``{part: {group: {column: amount}}}`` flattened to ``{"group/column[@part]": "amount"}``."""
        out: dict[str, dict[str, str]] = {}
        many = len(self.result.parts) > 1
        for part in self.result.parts:
            suffix = f"@{part.period[0]}..{part.period[1]}" if many and part.period else ""
            for group, columns in part.document.grand_totals().items():
                out.setdefault(group + suffix, {}).update({k: str(v) for k, v in columns.items()})
        return out


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def cell_rows(result: ReportResult) -> list[tuple[Any, ...]]:
    """Tidy rows in ``mirror.reports.CELL_FIELDS`` order."""
    rows = []
    for part, cell in result.cells():
        start, end = part.period if part.period else (part.document.start_period, part.document.end_period)
        column = cell.column
        rows.append((
            start, end, cell.row_number, cell.row_type, list(cell.section_path), " / ".join(cell.section_path),
            cell.group, cell.label, cell.row_id, column.key, column.title, column.start_date, column.end_date,
            cell.value, cell.amount, cell.value_id,
        ))  # fmt: skip
    return rows


@dataclass
class ReportSync:
    """Runs and stores registry reports for the companies connected in ``home``."""

    home: Home
    client_factory: Callable[[str], Any] | None = None
    lock_timeout: float = 900.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def client(self, realm_id: str) -> Any:
        if self.client_factory is not None:
            return self.client_factory(realm_id)
        store = CompanyStore(self.home)
        if realm_id not in store.realms():
            raise SyncError(f"company {realm_id!r} is not connected; run `smartsync connect` first")
        return QBOClient(store.load(realm_id), store.tokens(realm_id), home=self.home)

    def run(
        self,
        realm_id: str,
        name: str | ReportSpec,
        *,
        period: tuple[date, date] | None = None,
        trigger: str = "manual",
        run_id: str | None = None,
        **params: Any,
    ) -> ReportOutcome:
        """Run report ``name`` for one company: for ``period`` (a month: its key is ``YYYY-MM``; an
        AS_OF report is then as of the period's last day) or, without one, as QBO defaults (aging:
        as of today; key ``current``)."""
        spec = name if isinstance(name, ReportSpec) else report(name)
        if trigger not in TRIGGERS:
            raise SyncError(f"unknown trigger {trigger!r}; expected one of {', '.join(sorted(TRIGGERS))}")
        client = self.client(realm_id)
        try:
            runner = ReportRunner(client)
            if period is not None:
                start, end = period
                result = runner.run(spec, start=start, end=end, **params)
                key = month_key(start) if (start.day == 1 and month_key(start) == month_key(end)) else \
                    f"{start.isoformat()}..{end.isoformat()}"  # fmt: skip
            else:
                result = runner.run(spec, **params)
                key = CURRENT_KEY
        finally:
            if self.client_factory is None:
                client.close()
        fetched = self.clock()
        first, last = result.parts[0].document, result.parts[-1].document
        period_start = period[0] if period else first.start_period
        period_end = period[1] if period else last.end_period
        if spec.dates == AS_OF and period is None:
            period_start = period_end
        run = ReportRun(
            realm_id=realm_id,
            report=spec.name,
            period_key=key,
            period_start=period_start,
            period_end=period_end,
            params=json.dumps(result.params, sort_keys=True, separators=(",", ":")),
            content_hash=result.content_hash(),
            parts=len(result.parts),
            requests=result.requests,
            splits=result.splits,
            no_data=result.no_data,
            fetched_at=fetched,
            trigger=trigger,
            run_id=run_id,
        )
        stored, generation = ReportStore(self.home, self.lock_timeout).write(
            run, cell_rows(result), today=fetched.date()
        )
        log.info(
            "report %s of %s (%s): %d cells, %d requests, hash %s%s",
            spec.name, realm_id, key, stored.cells, result.requests, run.content_hash[:12],
            " (changed)" if stored.changed else "",
        )  # fmt: skip
        return ReportOutcome(result, run, stored, generation)

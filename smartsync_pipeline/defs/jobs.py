"""Jobs that schedules and sensors target: per-realm mirror syncs, the change-log audit, the
all-company sweep of the mirror checks, and the report refreshes."""

from __future__ import annotations

import dagster as dg

from smartsync_pipeline.defs.assets.change_log import CHANGE_LOG_KEY
from smartsync_pipeline.defs.assets.fleet_freshness import FLEET_FRESHNESS_KEY
from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.assets.reports import REPORT_KEYS
from smartsync_pipeline.entities.reports import MONTHLY, REPORTS

mirror_sync_job = dg.define_asset_job(
    "mirror_sync",
    selection=dg.AssetSelection.assets(*MIRROR_KEYS.values()),
    description="Sync some or all QBO entities of one realm (partition) through the sync engine.",
)

change_log_audit_job = dg.define_asset_job(
    "change_log_audit",
    selection=dg.AssetSelection.assets(CHANGE_LOG_KEY),
    description="Verify the change log's hash chain and archive new changes to Parquet.",
)

fleet_freshness_job = dg.define_asset_job(
    "fleet_freshness",
    selection=dg.AssetSelection.assets(FLEET_FRESHNESS_KEY),
    description="Summarise the fleet's freshness per entity (companies within / over window).",
)

company_checks_sweep_job = dg.define_asset_job(
    "company_checks_sweep",
    selection=dg.AssetSelection.checks_for_assets(*MIRROR_KEYS.values()),
    description="Every mirror check (freshness, unique ids, counts against QBO) over every company, no sync.",
)

# The report assets come in two partition shapes, so two jobs: as of today per company (aging) and per
# (company, month) (ProfitAndLoss, BalanceSheet, CashFlow, GeneralLedger, TransactionList). Their
# reconciliation checks run in the same runs.
current_reports_job = dg.define_asset_job(
    "current_reports",
    selection=dg.AssetSelection.assets(*(REPORT_KEYS[s.name] for s in REPORTS if s.partition != MONTHLY)),
    description="QBO's reports as of today for one company (aging), each checked against the mirror.",
)

monthly_reports_job = dg.define_asset_job(
    "monthly_reports",
    selection=dg.AssetSelection.assets(*(REPORT_KEYS[s.name] for s in REPORTS if s.partition == MONTHLY)),
    description="QBO's monthly reports for one (company, month), each checked against the mirror.",
)

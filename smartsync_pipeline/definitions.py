"""The Dagster code location: ONE ``Definitions`` built from the modules under ``defs/``.

Assets and checks are collected from their packages (a new module there is picked up without an edit
here); jobs, schedules and sensors are listed; resources come from ``defs.resources.RESOURCES``.
Loading this module opens no database and calls no API.
"""

from __future__ import annotations

import warnings

import dagster as dg

from smartsync_pipeline.defs import assets, checks
from smartsync_pipeline.defs.executor import executor_from_env
from smartsync_pipeline.defs.fleet_sync import fleet_sync_job
from smartsync_pipeline.defs.jobs import (
    change_log_audit_job,
    company_checks_sweep_job,
    current_reports_job,
    fleet_freshness_job,
    mirror_sync_job,
    monthly_reports_job,
)
from smartsync_pipeline.defs.report_schedules import current_reports_refresh, monthly_reports_refresh
from smartsync_pipeline.defs.resources import RESOURCES
from smartsync_pipeline.defs.schedules import (
    cdc_sweep,
    change_log_audit_hourly,
    daily_full_reconciliation,
    weekly_company_checks_sweep,
)
from smartsync_pipeline.defs.sensors.dead_runs import dead_run_reaper
from smartsync_pipeline.defs.sensors.digest_automation import runway_digest_automation
from smartsync_pipeline.defs.sensors.fleet_scheduler import fleet_scheduler
from smartsync_pipeline.defs.sensors.freshness_enforcer import mirror_freshness_enforcer
from smartsync_pipeline.defs.sensors.webhook_inbox import webhook_inbox

# Dagster 1.13 warns "Parameter `owners` of SensorDefinition.__init__ is in beta" whenever it binds resources to
# a sensor's target job (its own `with_updated_jobs` passes `owners`); no sensor here sets owners, so the warning
# told demo and UI users about nothing they can act on.
warnings.filterwarnings("ignore", message=r"Parameter `owners` of initializer `SensorDefinition.__init__`")

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=dg.load_asset_checks_from_package_module(checks),
    jobs=[
        mirror_sync_job,
        change_log_audit_job,
        company_checks_sweep_job,
        fleet_sync_job,
        fleet_freshness_job,
        current_reports_job,
        monthly_reports_job,
    ],
    schedules=[
        cdc_sweep,
        daily_full_reconciliation,
        change_log_audit_hourly,
        weekly_company_checks_sweep,
        current_reports_refresh,
        monthly_reports_refresh,
    ],
    sensors=[mirror_freshness_enforcer, webhook_inbox, runway_digest_automation, dead_run_reaper, fleet_scheduler],
    resources=RESOURCES,
    executor=executor_from_env(),  # SMARTSYNC_EXECUTOR: Dagster's default, or Celery workers on many hosts
)

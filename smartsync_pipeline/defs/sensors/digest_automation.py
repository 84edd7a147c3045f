"""Evaluates the runway digest's automation condition (refresh a company's digest after its mirrors
change), on by default: Dagster's implicit automation sensor would start stopped."""

from __future__ import annotations

import dagster as dg

from smartsync_pipeline.defs.assets.runway_digest import RUNWAY_DIGEST_KEY

runway_digest_automation = dg.AutomationConditionSensorDefinition(
    "runway_digest_automation",
    target=dg.AssetSelection.assets(RUNWAY_DIGEST_KEY),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    emit_backfills=False,
    description="Requests a company's runway digest after that company's input mirrors were materialized.",
)

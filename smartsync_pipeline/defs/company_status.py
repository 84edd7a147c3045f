"""What Dagster shows about the companies right away, before any run: each mirror asset's freshness
check, evaluated over every connected company and recorded outside a run.

Without it the checks stay "Not Evaluated" until the first sync run (up to 15 minutes after
``connect``). ``smartsync connect`` and the demo call it; it reads only the fleet state index (the
published sync state of every company, in one SQLite file) and never fails the command that calls it.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import dagster as dg

from smartsync_pipeline.defs.checks.freshness import freshness_evaluations
from smartsync_pipeline.defs.checks.realm_scope import all_realms
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.fleet_state import FleetState

log = logging.getLogger("smartsync.defs")


def record_freshness_checks(home: Home, now: datetime | None = None) -> int:
    """Evaluate every mirror asset's freshness check over every company on the instance at DAGSTER_HOME
    and record the results; returns how many were recorded (0 without a configured instance)."""
    if not os.environ.get("DAGSTER_HOME"):
        return 0
    try:
        info = FleetState(home).view()
        with dg.DagsterInstance.get() as instance:
            realms = all_realms(instance, info)
            if not realms:
                return 0
            evaluations = freshness_evaluations(info.state, realms, now or datetime.now(UTC))
            for evaluation in evaluations:
                instance.report_runless_asset_event(evaluation)
            return len(evaluations)
    except Exception as exc:  # showing status must never fail a connect or the demo
        log.warning("could not record the freshness checks in Dagster: %s", exc)
        return 0

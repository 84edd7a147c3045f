"""Which companies (realms) a check looks at.

A check that runs with a sync run (a partitioned run) checks that run's company only: one company's
sync must not pay for, or fail because of, every other company (the daily reconciliation used to cost
about 10·N² QBO calls for N companies). A check run without a partition, as the all-company sweep
(``company_checks_sweep``) runs them, looks at every company: each connected realm partition, plus any
realm the fleet state index holds.
"""

from __future__ import annotations

import dagster as dg

from smartsync_pipeline.defs.partitions import connected_realms
from smartsync_pipeline.mirror.fleet_state import FleetView


def all_realms(instance: dg.DagsterInstance, info: FleetView | None) -> list[str]:
    return sorted(set(connected_realms(instance)) | set(info.realms if info else []))


def realms_to_check(context: dg.AssetCheckExecutionContext, info: FleetView | None) -> list[str]:
    """The run's company when the run has one, else every company."""
    if context.has_partition_key:
        return [context.partition_key]
    return all_realms(context.instance, info)

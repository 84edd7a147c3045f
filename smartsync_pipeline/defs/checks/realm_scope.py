"""Which realms a check looks at: every connected realm partition, plus any realm the fleet index holds."""

from __future__ import annotations

import dagster as dg

from smartsync_pipeline.defs.partitions import connected_realms
from smartsync_pipeline.mirror.fleet_state import FleetView


def realms_to_check(instance: dg.DagsterInstance, info: FleetView | None) -> list[str]:
    return sorted(set(connected_realms(instance)) | set(info.realms if info else []))

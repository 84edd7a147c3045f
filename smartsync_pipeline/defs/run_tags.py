"""How a run says why it syncs: the ``trigger`` written into every change-log row it causes.

Our sensors and schedules tag their runs with ``smartsync/trigger``; runs Dagster starts on its own
are recognised by Dagster's system tags (backfill, schedule, sensor); anything else was started by a
person (UI launchpad, CLI) and counts as ``manual``.
"""

from __future__ import annotations

from collections.abc import Mapping

from smartsync_pipeline.mirror.change_log import TRIGGERS

TRIGGER_TAG = "smartsync/trigger"

# Dagster's own system tags (stable strings, see dagster/_core/storage/tags.py).
BACKFILL_TAG = "dagster/backfill"
SCHEDULE_TAG = "dagster/schedule_name"
SENSOR_TAG = "dagster/sensor_name"
PARTITION_TAG = "dagster/partition"


def trigger_tags(trigger: str) -> dict[str, str]:
    """Run tags for a run our own code requests."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}; expected one of {', '.join(sorted(TRIGGERS))}")
    return {TRIGGER_TAG: trigger}


def trigger_for_run(tags: Mapping[str, str]) -> str:
    """The change-log trigger for a run with these tags."""
    explicit = tags.get(TRIGGER_TAG)
    if explicit is not None:
        if explicit not in TRIGGERS:
            raise ValueError(
                f"run tag {TRIGGER_TAG}={explicit!r} is not a trigger; expected one of {', '.join(sorted(TRIGGERS))}"
            )
        return explicit
    if BACKFILL_TAG in tags:
        return "backfill"
    if SCHEDULE_TAG in tags:
        return "schedule"
    if SENSOR_TAG in tags:
        return "sensor"
    return "manual"

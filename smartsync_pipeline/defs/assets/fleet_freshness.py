"""``fleet/freshness``: the fleet's freshness on one page, instead of 10,000 partitions to scroll.

Per entity: how many companies synced it within its freshness window, how many are older than the
window but within the sweep interval the fleet policy gives it (quiet companies: no webhook came, so
no change is known; a missed one is caught by the sweep), how many are overdue for their sweep (the
scheduler is behind: look at them), and how many were never synced. Also the budget plan in force.
Read from the published sync state (no DuckDB, no QBO call); the ``fleet_scheduler`` requests it every
15 minutes and it can be materialized by hand.
"""

# No `from __future__ import annotations`: Dagster resolves resource annotations at runtime.

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from smartsync_pipeline.defs.fleet_plan import fleet_plan
from smartsync_pipeline.defs.partitions import connected_realms
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.fleet.budget import BudgetPlan
from smartsync_pipeline.fleet.rules import MINUTE

FLEET_FRESHNESS_KEY = dg.AssetKey(["fleet", "freshness"])
SAMPLE = 20
_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("entity", "string"),
        dg.TableColumn("window_min", "int", description="freshness (fail) window, minutes"),
        dg.TableColumn("sweep_min", "int", description="sweep interval of the budget plan, minutes"),
        dg.TableColumn("within_window", "int", description="companies synced within the window"),
        dg.TableColumn("quiet", "int", description="older than the window, within the sweep interval"),
        dg.TableColumn("overdue", "int", description="older than the sweep interval: the scheduler is behind"),
        dg.TableColumn("never_synced", "int"),
    ]
)


@dataclass
class EntityCounts:
    within_window: int = 0
    quiet: int = 0
    overdue: int = 0
    never_synced: int = 0


@dataclass
class FleetFreshness:
    """The summary: counts per entity and the companies that need a look."""

    now: datetime
    companies: int
    by_entity: dict[str, EntityCounts] = field(default_factory=dict)
    all_within_window: int = 0
    behind: list[str] = field(default_factory=list)  # companies with an entity overdue or never synced


def summarize(
    state: Mapping[str, Mapping[str, Mapping[str, Any]]], realms: list[str], plan: BudgetPlan, now: datetime
) -> FleetFreshness:
    """Classify every (company, entity) of ``realms`` by the age of its last sync."""
    summary = FleetFreshness(now, len(realms), {t.name: EntityCounts() for t in plan.timings})
    for realm in realms:
        rows = state.get(realm, {})
        within, behind = True, False
        for timing in plan.timings:
            counts = summary.by_entity[timing.name]
            value = (rows.get(timing.name) or {}).get("last_sync_at")
            if not value:
                counts.never_synced += 1
                within, behind = False, True
                continue
            last = datetime.fromisoformat(value) if isinstance(value, str) else value
            age = (now - last).total_seconds()
            if age <= timing.rule.window:
                counts.within_window += 1
            elif age <= timing.sweep + MINUTE:
                counts.quiet += 1
                within = False
            else:
                counts.overdue += 1
                within, behind = False, True
        summary.all_within_window += within
        if behind:
            summary.behind.append(realm)
    return summary


def summary_metadata(summary: FleetFreshness, plan: BudgetPlan) -> dict[str, dg.MetadataValue]:
    records = [
        dg.TableRecord(
            {
                "entity": t.name,
                "window_min": round(t.rule.window / MINUTE),
                "sweep_min": round(t.sweep / MINUTE),
                "within_window": summary.by_entity[t.name].within_window,
                "quiet": summary.by_entity[t.name].quiet,
                "overdue": summary.by_entity[t.name].overdue,
                "never_synced": summary.by_entity[t.name].never_synced,
            }
        )
        for t in plan.timings
    ]
    return {
        "companies": dg.MetadataValue.int(summary.companies),
        "companies_all_within_window": dg.MetadataValue.int(summary.all_within_window),
        "companies_behind": dg.MetadataValue.int(len(summary.behind)),
        "companies_behind_sample": dg.MetadataValue.text(", ".join(summary.behind[:SAMPLE]) or "none"),
        "by_entity": dg.MetadataValue.table(records, schema=_SCHEMA),
        "monthly_budget": dg.MetadataValue.float(float(plan.monthly_budget or 0)),
        "plan": dg.MetadataValue.text(plan.message),
        "as_of": dg.MetadataValue.timestamp(summary.now),
    }


@dg.asset(
    key=FLEET_FRESHNESS_KEY,
    group_name="fleet",
    kinds={"python"},
    description=(
        "Per entity: companies synced within the freshness window, quiet ones within their sweep, "
        "overdue ones and never-synced ones; the budget plan in force."
    ),
)
def fleet_freshness(context: dg.AssetExecutionContext, mirror_sync: MirrorSyncResource) -> dg.MaterializeResult:
    realms = connected_realms(context.instance)
    info = mirror_sync.snapshot_state()
    plan = fleet_plan(len(realms))
    summary = summarize(info.state if info else {}, realms, plan, datetime.now(UTC))
    context.log.info(
        f"{summary.companies} companies: {summary.all_within_window} all within window, {len(summary.behind)} behind"
    )
    return dg.MaterializeResult(metadata=summary_metadata(summary, plan))

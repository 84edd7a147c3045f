"""Freshness per realm, per mirror asset: WARN past the warn window, ERROR past the fail window.

Reads the sync state published with the snapshots (JSON), so it is cheap enough to run after every
sync; ``as_of`` evaluates at another time (what will be stale tonight?), which is also how tests move
the clock. In a sync run it decides on that run's company and shows every other company's age beside
it; ``freshness_evaluations`` records the same results outside a run (after ``connect``, the demo).
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS, entity_for_key
from smartsync_pipeline.defs.checks.realm_scope import all_realms, realms_to_check
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.staleness import EntityAge, Staleness, SyncState, entity_age, format_age
from smartsync_pipeline.entities import entity

FRESHNESS_CHECK = "freshness"


class FreshnessCheckConfig(dg.Config):
    as_of: str = ""  # ISO-8601 time to judge freshness at; empty means now

    def now(self) -> datetime:
        if not self.as_of:
            return datetime.now(UTC)
        moment = datetime.fromisoformat(self.as_of)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_AGES_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("realm", "string"),
        dg.TableColumn("last_sync_at", "string"),
        dg.TableColumn("age", "string"),
        dg.TableColumn("status", "string"),
    ]
)


def company_line(ages: Sequence[EntityAge], limit: int = 10) -> str:
    """Every company at a glance: ``realm 123: 2m 05s (fresh), realm 456: never synced``."""
    parts = [
        f"realm {a.realm_id}: {format_age(a.age) + f' ({a.status.value})' if a.age is not None else a.status.value}"
        for a in ages[:limit]
    ]
    more = f", +{len(ages) - limit} more" if len(ages) > limit else ""
    return ", ".join(parts) + more


def freshness_result(key: dg.AssetKey, ages: list[EntityAge], others: Sequence[EntityAge] = ()) -> dg.AssetCheckResult:
    """One check result for one mirror asset: passes when every company in ``ages`` is fresh.

    ``others`` are the companies outside this check's scope (a sync run checks its own company): they
    are shown, so every company's freshness is visible at a glance, but do not decide the result."""
    stale = [a for a in ages if a.is_stale]
    failing = [a for a in stale if a.status in (Staleness.FAIL, Staleness.NEVER)]
    if not ages:
        description = "no company is connected yet"
    elif stale:
        description = "; ".join(a.describe() for a in stale)
    else:
        oldest = max(ages, key=lambda a: a.age or timedelta(0))
        description = f"fresh in {len(ages)} realm(s); oldest {oldest.describe()}"
    if len(ages) > 1:
        description += f". By company: {company_line(ages)}"
    if others:
        description += f". Other companies (checked in their own runs): {company_line(list(others))}"
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=FRESHNESS_CHECK,
        passed=not stale,
        severity=dg.AssetCheckSeverity.ERROR if failing else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "stale_realms": dg.MetadataValue.text(", ".join(sorted({a.realm_id for a in stale})) or "-"),
            "ages": dg.MetadataValue.table(
                [
                    dg.TableRecord(
                        {
                            "realm": a.realm_id,
                            "last_sync_at": a.last_sync_at.isoformat() if a.last_sync_at else "never",
                            "age": format_age(a.age) if a.age is not None else "-",
                            "status": a.status.value,
                        }
                    )
                    for a in [*ages, *others]
                ],
                schema=_AGES_SCHEMA,
            ),
        },
    )


def freshness_results(
    state: SyncState, realms: Sequence[str], everyone: Sequence[str], keys: Iterable[dg.AssetKey], now: datetime
) -> Iterator[dg.AssetCheckResult]:
    """The freshness check of each asset in ``keys``: ``realms`` decide, the rest of ``everyone`` is shown."""
    others = [r for r in everyone if r not in realms]
    for key in sorted(keys, key=str):
        spec = entity(entity_for_key(key))
        yield freshness_result(
            key, [entity_age(state, r, spec, now) for r in realms], [entity_age(state, r, spec, now) for r in others]
        )


def freshness_evaluations(state: SyncState, realms: Sequence[str], now: datetime) -> list[dg.AssetCheckEvaluation]:
    """Every mirror asset's freshness check over ``realms``, as evaluations recorded outside a run: the
    checks show a result as soon as a company is connected or synced, not only after the next run."""
    return [
        dg.AssetCheckEvaluation(
            asset_key=r.asset_key,
            check_name=r.check_name,
            passed=r.passed,
            severity=r.severity,
            description=r.description,
            metadata=r.metadata,
        )
        for r in freshness_results(state, realms, realms, MIRROR_KEYS.values(), now)
    ]


@dg.multi_asset_check(
    name="mirror_freshness",
    specs=[
        dg.AssetCheckSpec(FRESHNESS_CHECK, asset=key, description="Every realm synced within the freshness windows.")
        for key in MIRROR_KEYS.values()
    ],
    can_subset=True,
)
def mirror_freshness(
    context: dg.AssetCheckExecutionContext, config: FreshnessCheckConfig, mirror_sync: MirrorSyncResource
) -> Iterator[dg.AssetCheckResult]:
    info = mirror_sync.snapshot_state()
    yield from freshness_results(
        info.state if info else {},
        realms_to_check(context, info),
        all_realms(context.instance, info),
        [k.asset_key for k in context.selected_asset_check_keys],
        config.now(),
    )

"""Freshness per realm, per mirror asset: WARN past the warn window, ERROR past the fail window.

Reads the sync state published with the snapshots (JSON), so it is cheap enough to run after every
sync; ``as_of`` evaluates at another time (what will be stale tonight?), which is also how tests move
the clock.
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS, entity_for_key
from smartsync_pipeline.defs.checks.realm_scope import realms_to_check
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.staleness import EntityAge, Staleness, entity_age, format_age
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


def freshness_result(key: dg.AssetKey, ages: list[EntityAge]) -> dg.AssetCheckResult:
    """One check result for one mirror asset over all realms."""
    stale = [a for a in ages if a.is_stale]
    failing = [a for a in stale if a.status in (Staleness.FAIL, Staleness.NEVER)]
    if not ages:
        description = "no company is connected yet"
    elif stale:
        description = "; ".join(a.describe() for a in stale)
    else:
        oldest = max(ages, key=lambda a: a.age or timedelta(0))
        description = f"fresh in {len(ages)} realm(s); oldest {oldest.describe()}"
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
                    for a in ages
                ],
                schema=_AGES_SCHEMA,
            ),
        },
    )


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
    state = info.state if info else {}
    realms = realms_to_check(context.instance, info)
    now = config.now()
    for check_key in sorted(context.selected_asset_check_keys, key=str):
        spec = entity(entity_for_key(check_key.asset_key))
        yield freshness_result(check_key.asset_key, [entity_age(state, realm, spec, now) for realm in realms])

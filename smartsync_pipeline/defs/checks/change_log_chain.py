"""Every company's whole change-log hash chain, recomputed from the first change on its mirror file.

The change-log asset verifies incrementally (fast, every audit); this check re-verifies everything,
so a rewrite of history older than the last anchor is found too.
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

import dagster as dg

from smartsync_pipeline.defs.assets.change_log import CHANGE_LOG_KEY, describe_change
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.mirror import change_log as chain

CHAIN_CHECK = "chain_intact"


@dg.asset_check(
    asset=CHANGE_LOG_KEY,
    name=CHAIN_CHECK,
    description="Full recomputation of every company's change-log SHA-256 chain on its mirror file.",
)
def change_log_chain_intact(mirror_sync: MirrorSyncResource) -> dg.AssetCheckResult:
    realms = mirror_sync.realms_with_mirror()
    rows = 0
    broken: list[tuple[str, int, str]] = []
    for realm in realms:
        with mirror_sync.mirror(realm).inspect() as con:
            result = chain.verify(con)
            rows += result.rows_checked
            if not result.ok:
                what = describe_change(con, result.first_broken)
                broken.append((realm, result.first_broken or 0, f"[{what}]: {result.reason}"))
    metadata = {
        "companies_checked": dg.MetadataValue.int(len(realms)),
        "rows_checked": dg.MetadataValue.int(rows),
    }
    if not broken:
        return dg.AssetCheckResult(
            passed=True,
            description=f"chains intact: {rows} changes in {len(realms)} company(ies)",
            metadata=metadata,
        )
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(f"chain BROKEN at change {cid} {detail}" for _, cid, detail in broken),
        metadata={
            **metadata,
            "broken_realms": dg.MetadataValue.text(", ".join(r for r, _, _ in broken)),
            "first_broken_change_id": dg.MetadataValue.int(broken[0][1]),
        },
    )

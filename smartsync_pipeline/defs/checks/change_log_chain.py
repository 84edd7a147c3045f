"""The whole change-log hash chain, recomputed from the first change on the authoritative mirror file.

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
    description="Full recomputation of the change log's SHA-256 chain on the mirror file.",
)
def change_log_chain_intact(mirror_sync: MirrorSyncResource) -> dg.AssetCheckResult:
    with mirror_sync.mirror().inspect() as con:
        result = chain.verify(con)
        what = describe_change(con, result.first_broken)
    metadata = {
        "rows_checked": dg.MetadataValue.int(result.rows_checked),
        "head_change_id": dg.MetadataValue.int(result.head.change_id),
        "head_row_hash": dg.MetadataValue.text(result.head.row_hash),
    }
    if result.ok:
        return dg.AssetCheckResult(
            passed=True,
            description=f"chain intact: {result.rows_checked} changes, head {result.head.change_id}",
            metadata=metadata,
        )
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"chain BROKEN at change {result.first_broken} [{what}]: {result.reason}",
        metadata={**metadata, "first_broken_change_id": dg.MetadataValue.int(result.first_broken or 0)},
    )

"""The mirror against QBO's own reports, to the cent, per company partition of each report asset.

One check per ``sync.report_reconciliation.COMPARISONS`` entry, attached to the report it compares
with and partitioned like it (the company, or the company and month), so it runs in the same run
that materializes the report: AP aging vs AgedPayables, AR aging vs AgedReceivables, cash vs the
BalanceSheet's bank accounts (a closed month's too: the mirrored transactions dated after its end are
taken back out of today's balances), net income of the month vs ProfitAndLoss. It reads the company's newest
published snapshot (entities and the stored report together). A failure's description is the
difference table; each difference names the documents that explain it: the ones QBO changed after
the mirror's last sync (severity WARN: a sync fixes the lag), else the mirror's own documents behind
the figure (severity ERROR: the two really disagree). See README, "Reconciliation with QBO's reports".
"""

# No `from __future__ import annotations`: Dagster resolves resource annotations at runtime.

import warnings
from collections.abc import Callable
from typing import Any

import dagster as dg

from smartsync_pipeline.defs.assets.reports import REPORT_KEYS, monthly_by_realm, partition_scope
from smartsync_pipeline.defs.partitions import realms
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.entities.reports import MONTHLY, report
from smartsync_pipeline.sync.report_explanation import is_lag, reconcile_with_report
from smartsync_pipeline.sync.report_reconciliation import COMPARISONS, Comparison, MissingReportError, Reconciliation
from smartsync_pipeline.sync.report_sync import month_key

REPORT_RECONCILIATION_CHECK = "reconciles_with_mirror"

_DIFFERENCES_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("figure", "string"),
        dg.TableColumn("column", "string"),
        dg.TableColumn("mirror", "string"),
        dg.TableColumn("report", "string"),
        dg.TableColumn("difference", "string"),
        dg.TableColumn("documents", "string"),
        dg.TableColumn("cause", "string"),
    ]
)


def check_metadata(result: Reconciliation) -> dict[str, object]:
    rows = [
        dg.TableRecord({
            "figure": d.label or d.key, "column": d.column, "mirror": str(d.mirror), "report": str(d.report),
            "difference": str(d.delta), "documents": ", ".join(d.documents[:20]), "cause": d.cause,
        })
        for d in result.differences[:200]
    ]  # fmt: skip
    return {
        "realm_id": result.realm_id,
        "mirror_total": dg.MetadataValue.text(str(result.mirror_total)),
        "report_total": dg.MetadataValue.text(str(result.report_total)),
        "figures_compared": dg.MetadataValue.int(result.compared),
        "differences": dg.MetadataValue.int(len(result.differences)),
        "difference_table": dg.MetadataValue.table(rows, schema=_DIFFERENCES_SCHEMA),
        "explanation": dg.MetadataValue.text(result.note or ""),
    }


def fitted_description(result: Reconciliation, limit: int = 4000) -> str:
    """The difference report cut at a whole line, saying where the rest is."""
    lines, size = [], 0
    for line in result.describe().splitlines():
        if size + len(line) > limit - 120:
            lines.append(f"  … all {len(result.differences)} differences are in the difference_table metadata")
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


def severity_of(result: Reconciliation) -> dg.AssetCheckSeverity:
    """WARN when every difference is a lag (QBO changed after the mirror's last sync, or the stored report
    is older than it) or there was nothing to compare, else ERROR."""
    lag = all(is_lag(d) for d in result.differences)  # True for no difference
    return dg.AssetCheckSeverity.WARN if lag else dg.AssetCheckSeverity.ERROR


def _partitioned_check(**kwargs: Any) -> Callable[..., dg.AssetChecksDefinition]:
    """``dg.asset_check`` with a ``partitions_def``, a preview feature in Dagster 1.13: its warning is
    silenced here (and only here) because the result per company partition is the point (a company's
    failure must not be hidden by another's later pass) and the Dagster family is pinned, with
    ``test_report_checks`` running the checks for real on every upgrade."""

    def decorate(fn: Callable[..., dg.AssetCheckResult]) -> dg.AssetChecksDefinition:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def.*AssetCheckSpec")
            return dg.asset_check(**kwargs)(fn)

    return decorate


def _report_check(comparison: Comparison) -> dg.AssetChecksDefinition:
    spec = report(comparison.report)

    @_partitioned_check(
        asset=REPORT_KEYS[spec.name],
        name=REPORT_RECONCILIATION_CHECK,
        partitions_def=monthly_by_realm if spec.partition == MONTHLY else realms,
        description=f"{comparison.title.capitalize()} from the mirror equals QBO's {spec.name} to the cent: "
        f"{comparison.meaning}.",
        metadata={"comparison": comparison.name, "report": spec.name},
    )
    def _check(context: dg.AssetCheckExecutionContext, mirror_sync: MirrorSyncResource) -> dg.AssetCheckResult:
        realm_id, period = partition_scope(spec, context.partition_key)
        period_key = month_key(period[0]) if period else None
        reader = mirror_sync.snapshot_reader()
        client = None
        try:
            with reader.cursor(realm_id=realm_id) as (con, _):
                try:
                    client = mirror_sync.engine().client(realm_id)
                except Exception as exc:  # e.g. disconnected: the comparison stands without explanations
                    context.log.warning(f"company {realm_id}: QBO not asked to explain differences ({exc})")
                result = reconcile_with_report(con, realm_id, comparison, period_key, client=client)
        except (MissingReportError, FileNotFoundError) as exc:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"company {realm_id}: not compared: {exc}",
                metadata={"realm_id": realm_id},
            )
        finally:
            if client is not None and hasattr(client, "close"):
                client.close()
            reader.close()
        context.log.info(result.describe())
        return dg.AssetCheckResult(
            passed=result.ok,
            severity=severity_of(result),
            description=fitted_description(result),
            metadata=check_metadata(result),
        )

    return _check


REPORT_RECONCILIATION_CHECKS: list[dg.AssetChecksDefinition] = [_report_check(c) for c in COMPARISONS]

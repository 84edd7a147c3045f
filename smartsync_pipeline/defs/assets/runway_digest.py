"""The runway digest asset: the report people read, from the smart read path.

It asks the DigestDataOrchestrator (domain services → QBOSyncService → SmartReader), so a stale mirror
is refreshed on demand like any other read. The digest lands in the UI as Markdown metadata, and as an
HTML page with a cash projection chart under SMARTSYNC_HOME/reports/. It refreshes itself: its
automation condition (eager) asks for a company's digest again whenever one of that company's input
mirrors has been materialized since the last digest (``runway_digest_automation`` evaluates it).
"""

# No `from __future__ import annotations`: Dagster resolves resource annotations at runtime.

from datetime import date

import dagster as dg

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.partitions import realms
from smartsync_pipeline.defs.resources.smart_reader import SmartReaderResource
from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
from smartsync_pipeline.orchestrators.digest_report import to_html, to_markdown
from smartsync_pipeline.services.bank_flows import leg_entities
from smartsync_pipeline.services.credits import OPEN_CREDITS

RUNWAY_DIGEST_KEY = dg.AssetKey(["reports", "runway_digest"])
# Every mirror the digest reads: the documents, and every entity a bank-movement or open-credit rule
# names that this build mirrors (entities join as the registry grows).
DIGEST_INPUTS = tuple(
    name
    for name in dict.fromkeys(
        ("Account", "Bill", "Invoice", "CompanyInfo", *leg_entities(), *(c.entity for c in OPEN_CREDITS))
    )
    if name in MIRROR_KEYS
)


def _number(value: str | None) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(value)) if value is not None else dg.MetadataValue.text("n/a")


@dg.asset(
    key=RUNWAY_DIGEST_KEY,
    group_name="reports",
    partitions_def=realms,
    deps=[MIRROR_KEYS[name] for name in DIGEST_INPUTS],
    description="Cash in the bank accounts, AP/AR net of credits and by due date, the trailing 13-week net burn "
    "from the bank movements, runway (with its method) and a cash projection, for one company, with provenance. "
    "Refreshed after each sync of the company's mirrors.",
    automation_condition=dg.AutomationCondition.eager(),
)
def runway_digest(context: dg.AssetExecutionContext, smart_reader: SmartReaderResource) -> dg.MaterializeResult:
    realm_id = context.partition_key
    with smart_reader.build() as reader:
        digest = DigestDataOrchestrator(reader).get_digest_data(realm_id)
        reports = reader.home.root / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    html_path = reports / f"runway-{realm_id}-{date.today().isoformat()}.html"
    html_path.write_text(to_html(digest))
    summary = digest["provenance_summary"]
    return dg.MaterializeResult(
        metadata={
            "digest": dg.MetadataValue.md(to_markdown(digest)),
            "html_report": dg.MetadataValue.path(str(html_path)),
            **{
                key: _number(digest[key])
                for key in (
                    "cash_on_hand",
                    "ap_due_30d",
                    "ar_due_30d",
                    "overdue_ap",
                    "overdue_ar",
                    "net_30d",
                    "weekly_net_burn",
                    "ap_net",
                    "ar_net",
                    "runway_weeks",
                )
            },
            "company": dg.MetadataValue.text(digest["company_name"]),
            "runway_method": dg.MetadataValue.text(digest["runway_method"]),
            "data_source": dg.MetadataValue.text(summary["source"]),
            "data_stale": dg.MetadataValue.bool(summary["stale"]),
            "oldest_data_as_of": dg.MetadataValue.text(summary["as_of"] or "n/a"),
        }
    )

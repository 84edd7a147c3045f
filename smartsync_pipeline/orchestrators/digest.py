"""DigestDataOrchestrator: assembles the runway digest from domain services only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from smartsync_pipeline.services import CashFlowHistory, CashPosition, Documents, DomainServices, for_business

HORIZONS = (7, 30, 60)
# What the digest reads: refreshed together, with one bounded wait for all (see SmartReader.together).
DIGEST_ENTITIES = ("Account", "Bill", "Invoice", "Payment", "BillPayment", "Purchase")
BURN_WINDOW_DAYS = 91  # 13 weeks of history for the average weekly burn
PROJECTION_WEEKS = 9


@dataclass
class DigestDataOrchestrator:
    """``get_digest_data(business_id)`` → the runway digest, every figure with its provenance.

    ``reader`` is the SmartReader resource; the orchestrator hands it to the domain services and
    never reads data itself."""

    reader: Any
    today: date | None = None

    def services(self, business_id: str) -> DomainServices:
        if not isinstance(business_id, str) or not business_id.strip():
            raise ValueError("business_id must be the company's realm id")
        return for_business(self.reader, business_id, today=self.today)

    def services_together(self, business_id: str, max_age: float | None) -> DomainServices:
        """The services on a reader that refreshed the digest's entities together first (one sync,
        one bounded wait), when the reader can (a SmartReader); else on the reader as is."""
        together = getattr(self.reader, "together", None)
        if together is None or not isinstance(business_id, str) or not business_id.strip():
            return self.services(business_id)
        return for_business(together(business_id, DIGEST_ENTITIES, max_age=max_age), business_id, today=self.today)

    def get_digest_data(self, business_id: str, *, max_age: float | None = None) -> dict[str, Any]:
        s = self.services_together(business_id, max_age)
        cash = s.accounts.get_cash_position(max_age=max_age)
        ap = s.bills.open_documents(max_age=max_age)
        ar = s.invoices.open_documents(max_age=max_age)
        history = s.payments.cash_flow_history(BURN_WINDOW_DAYS, max_age=max_age)
        return assemble(s, cash, ap, ar, history)

    async def get_digest_data_async(self, business_id: str, *, max_age: float | None = None) -> dict[str, Any]:
        """The same digest with its reads running concurrently (the pattern's ``await`` form)."""
        s = await asyncio.to_thread(self.services_together, business_id, max_age)

        def run(fn: Any, *args: Any) -> Any:
            return asyncio.to_thread(fn, *args, max_age=max_age)

        cash, ap, ar, history = await asyncio.gather(
            run(s.accounts.get_cash_position),
            run(s.bills.open_documents),
            run(s.invoices.open_documents),
            run(s.payments.cash_flow_history, BURN_WINDOW_DAYS),
        )
        return assemble(s, cash, ap, ar, history)


def assemble(
    s: DomainServices, cash: CashPosition, ap_docs: Documents, ar_docs: Documents, history: CashFlowHistory
) -> dict[str, Any]:
    """The digest as plain data: money as 2-decimal strings, provenance per part. Every AP and AR figure
    comes from one read of open bills and one of open invoices, so they agree with each other."""
    today = s.bills.qbo_sync.today()
    ap, ar = ap_docs.due_totals(HORIZONS), ar_docs.due_totals(HORIZONS)
    overdue_ap, overdue_ar = ap_docs.overdue(), ar_docs.overdue()
    burn = history.weekly_net_burn
    runway = (cash.total / burn).quantize(Decimal("0.1")) if burn > 0 else None
    provenance = {
        "cash_on_hand": cash.provenance.public(),
        "accounts_payable": ap_docs.provenance.public(),
        "accounts_receivable": ar_docs.provenance.public(),
        **{f"history_{k}": p.public() for k, p in history.provenance.items()},
    }
    return {
        "business_id": s.business_id,
        "as_of_date": today.isoformat(),
        "cash_on_hand": str(cash.total),
        "bank_accounts": cash.accounts,
        **{f"ap_due_{h}d": str(v) for h, v in ap.items()},
        **{f"ar_due_{h}d": str(v) for h, v in ar.items()},
        "overdue_ap": str(overdue_ap.total_balance),
        "overdue_ar": str(overdue_ar.total_balance),
        "overdue_bills": overdue_ap.count,
        "overdue_invoices": overdue_ar.count,
        "net_30d": str(ar[30] - ap[30]),
        "inflows_91d": str(history.inflows),
        "outflows_91d": str(history.outflows),
        "weekly_net_burn": str(burn),
        "runway_weeks": None if runway is None else str(runway),
        "runway_note": (
            "cash on hand / average weekly net outflow over the last 13 weeks"
            if runway is not None
            else "not burning cash: inflows exceeded outflows over the last 13 weeks"
        ),
        "top_vendors_owed": s.vendors.rank_owed(ap_docs, 5).items,
        "customers_most_overdue": s.customers.rank_overdue(overdue_ar, 5).items,
        "cash_projection": projection(today, cash.total, ap_docs, ar_docs),
        "provenance": provenance,
        "provenance_summary": _summary(provenance),
    }


def projection(
    today: date, cash: Decimal, ap_docs: Documents, ar_docs: Documents, weeks: int = PROJECTION_WEEKS
) -> list[dict]:
    """Projected cash at the end of each coming week: collect AR and pay AP on their due dates
    (anything already overdue lands in the first week)."""
    points, balance = [], cash
    for week in range(weeks):
        end = today + timedelta(days=7 * (week + 1))
        lo = None if week == 0 else 7 * week
        inflow = ar_docs.balance_due(lo, 7 * (week + 1))
        outflow = ap_docs.balance_due(lo, 7 * (week + 1))
        balance = balance + inflow - outflow
        points.append(
            {"week_ending": end.isoformat(), "inflow": str(inflow), "outflow": str(outflow), "cash": str(balance)}
        )
    return points


def _summary(parts: dict[str, dict]) -> dict[str, Any]:
    """The whole digest's provenance in the same shape as one part's: the oldest data decides."""
    ages = [p["age_seconds"] for p in parts.values() if p["age_seconds"] is not None]
    return {
        "source": "api" if any(p["source"] == "api" for p in parts.values()) else "mirror",
        "as_of": min((p["as_of"] for p in parts.values() if p["as_of"]), default=None),
        "age_seconds": max(ages) if ages else None,
        "stale": any(p["stale"] for p in parts.values()),
    }

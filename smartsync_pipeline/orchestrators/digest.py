"""DigestDataOrchestrator: assembles the runway digest from domain services only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from smartsync_pipeline.services import DomainServices, for_business
from smartsync_pipeline.services.answers import money

HORIZONS = (7, 30, 60)
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

    def get_digest_data(self, business_id: str, *, max_age: float | None = None) -> dict[str, Any]:
        s = self.services(business_id)
        cash = s.accounts.get_cash_position(max_age=max_age)
        ap, _ = s.bills.due_totals(HORIZONS, max_age=max_age)
        overdue_ap = s.bills.get_overdue_bills(max_age=max_age)
        ar, _ = s.invoices.due_totals(HORIZONS, max_age=max_age)
        overdue_ar = s.invoices.get_overdue_invoices(max_age=max_age)
        history = s.payments.cash_flow_history(BURN_WINDOW_DAYS, max_age=max_age)
        vendors = s.vendors.top_vendors_owed(5, max_age=max_age)
        customers = s.customers.most_overdue_customers(5, max_age=max_age)
        ap_docs = s.bills.open_documents(max_age=max_age)
        ar_docs = s.invoices.open_documents(max_age=max_age)
        return assemble(
            business_id, s.bills.qbo_sync.today(), cash, ap, overdue_ap, ar, overdue_ar, history, vendors, customers,
            ap_docs, ar_docs,
        )  # fmt: skip

    async def get_digest_data_async(self, business_id: str, *, max_age: float | None = None) -> dict[str, Any]:
        """The same digest with its reads running concurrently (the pattern's ``await`` form)."""
        s = self.services(business_id)

        def run(fn: Any, *args: Any) -> Any:
            return asyncio.to_thread(fn, *args, max_age=max_age)

        parts = await asyncio.gather(
            run(s.accounts.get_cash_position),
            run(s.bills.due_totals, HORIZONS),
            run(s.bills.get_overdue_bills),
            run(s.invoices.due_totals, HORIZONS),
            run(s.invoices.get_overdue_invoices),
            run(s.payments.cash_flow_history, BURN_WINDOW_DAYS),
            run(s.vendors.top_vendors_owed, 5),
            run(s.customers.most_overdue_customers, 5),
            run(s.bills.open_documents),
            run(s.invoices.open_documents),
        )
        cash, (ap, _), overdue_ap, (ar, _), overdue_ar, history, vendors, customers, ap_docs, ar_docs = parts
        return assemble(
            business_id, s.bills.qbo_sync.today(), cash, ap, overdue_ap, ar, overdue_ar, history, vendors, customers,
            ap_docs, ar_docs,
        )  # fmt: skip


def assemble(
    business_id: str, today: date, cash: Any, ap: dict[int, Decimal], overdue_ap: Any, ar: dict[int, Decimal],
    overdue_ar: Any, history: Any, vendors: Any, customers: Any, ap_docs: Any, ar_docs: Any,
) -> dict[str, Any]:  # fmt: skip
    """The digest as plain data: money as 2-decimal strings, provenance per part."""
    burn = history.weekly_net_burn
    runway = (cash.total / burn).quantize(Decimal("0.1")) if burn > 0 else None
    provenance = {
        "cash_on_hand": cash.provenance.public(),
        "accounts_payable": overdue_ap.provenance.public(),
        "accounts_receivable": overdue_ar.provenance.public(),
        **{f"history_{k}": p.public() for k, p in history.provenance.items()},
    }
    return {
        "business_id": business_id,
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
        "top_vendors_owed": vendors.items,
        "customers_most_overdue": customers.items,
        "cash_projection": projection(today, cash.total, ap_docs, ar_docs),
        "provenance": provenance,
        "provenance_summary": _summary(provenance),
    }


def projection(today: date, cash: Decimal, ap_docs: Any, ar_docs: Any, weeks: int = PROJECTION_WEEKS) -> list[dict]:
    """Projected cash at the end of each coming week: collect AR and pay AP on their due dates
    (anything already overdue lands in the first week)."""
    points, balance = [], cash
    for week in range(weeks):
        end = today + timedelta(days=7 * (week + 1))
        lo = None if week == 0 else 7 * week
        inflow = _due_between(ar_docs.rows, lo, 7 * (week + 1))
        outflow = _due_between(ap_docs.rows, lo, 7 * (week + 1))
        balance = balance + inflow - outflow
        points.append(
            {"week_ending": end.isoformat(), "inflow": str(inflow), "outflow": str(outflow), "cash": str(balance)}
        )
    return points


def _due_between(rows: Any, lo: int | None, hi: int) -> Decimal:
    if not len(rows):
        return money(0)
    days = rows["days_until_due"]
    mask = days <= hi if lo is None else (days > lo) & (days <= hi)
    return money(rows.loc[mask, "balance"].sum())


def _summary(parts: dict[str, dict]) -> dict[str, Any]:
    """The whole digest's provenance in the same shape as one part's: the oldest data decides."""
    ages = [p["age_seconds"] for p in parts.values() if p["age_seconds"] is not None]
    return {
        "source": "api" if any(p["source"] == "api" for p in parts.values()) else "mirror",
        "as_of": min((p["as_of"] for p in parts.values() if p["as_of"]), default=None),
        "age_seconds": max(ages) if ages else None,
        "stale": any(p["stale"] for p in parts.values()),
    }

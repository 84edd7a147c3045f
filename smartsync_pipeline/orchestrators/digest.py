"""DigestDataOrchestrator: assembles the runway digest from domain services only.

The digest answers two questions a business owner asks, each with its method written beside it (see
``runway_method`` and ``projection_method`` in the digest, and ARCHITECTURE.md "The runway digest"):

* How long does the cash last at the pace of the last 3 months? Runway = cash in the bank accounts
  today ÷ the average weekly net burn (money out of the bank accounts minus money in) over the
  trailing 13 weeks, measured from the mirrored transactions themselves.
* What happens to the bank balance over the next weeks if the bills and invoices already in the books
  are paid and collected? The projection starts at today's cash and moves each open document to the
  week it falls due; overdue ones are spread over the first weeks (``OVERDUE_SPREAD_WEEKS``), and
  invoices more than ``DOUBTFUL_AFTER_DAYS`` late are left out as doubtful (reported separately).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from smartsync_pipeline.services import (
    BankFlows,
    CashPosition,
    CompanyName,
    Credits,
    Documents,
    DomainServices,
    for_business,
)
from smartsync_pipeline.services.bank_flows import TRAILING_WEEKS, leg_entities
from smartsync_pipeline.services.credits import OPEN_CREDITS

HORIZONS = (7, 30, 60)
BURN_WEEKS = TRAILING_WEEKS  # the trailing 3 months runway is measured over
BURN_WINDOW_DAYS = 7 * BURN_WEEKS
HISTORY_DAYS = 2 * BURN_WINDOW_DAYS  # runway over time needs a full window behind each past week
PROJECTION_WEEKS = 9
# What the digest reads: refreshed together, with one bounded wait for all (see SmartReader.together).
DIGEST_ENTITIES = tuple(
    dict.fromkeys(("Account", "Bill", "Invoice", "CompanyInfo", *leg_entities(), *(c.entity for c in OPEN_CREDITS)))
)
OVERDUE_SPREAD_WEEKS = 4
DOUBTFUL_AFTER_DAYS = 90
ZERO = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class DigestReads:
    """Everything the digest reads, one read per part (so every figure of a part agrees)."""

    cash: CashPosition
    ap: Documents
    ar: Documents
    flows: BankFlows
    credits: Credits
    company: CompanyName

    def provenances(self) -> list[Any]:
        parts = [self.cash.provenance, self.ap.provenance, self.ar.provenance]
        parts += [*self.flows.provenance.values(), *self.credits.provenance.values()]
        if self.company.provenance is not None:
            parts.append(self.company.provenance)
        return parts


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
        """The services on a reader that refreshed the digest's entities together first (one sync, one
        bounded wait, not one per entity), when the reader can (a SmartReader); else on the reader."""
        together = getattr(self.reader, "together", None)
        if together is None or not isinstance(business_id, str) or not business_id.strip():
            return self.services(business_id)
        return for_business(together(business_id, DIGEST_ENTITIES, max_age=max_age), business_id, today=self.today)

    def read(self, business_id: str, *, max_age: float | None = None) -> tuple[DomainServices, DigestReads]:
        """The services of the business and every read the digest needs."""
        s = self.services_together(business_id, max_age)
        return s, DigestReads(
            s.accounts.get_cash_position(max_age=max_age),
            s.bills.open_documents(max_age=max_age),
            s.invoices.open_documents(max_age=max_age),
            s.bank_flows.bank_flows(HISTORY_DAYS, max_age=max_age),
            s.credits.open_credits(max_age=max_age),
            s.company.company_name(max_age=max_age),
        )

    def get_digest_data(self, business_id: str, *, max_age: float | None = None) -> dict[str, Any]:
        return assemble(*self.read(business_id, max_age=max_age))

    async def get_digest_data_async(self, business_id: str, *, max_age: float | None = None) -> dict[str, Any]:
        """The same digest with its reads running concurrently (the pattern's ``await`` form)."""
        s = await asyncio.to_thread(self.services_together, business_id, max_age)

        def run(fn: Any, *args: Any) -> Any:
            return asyncio.to_thread(fn, *args, max_age=max_age)

        parts = await asyncio.gather(
            run(s.accounts.get_cash_position),
            run(s.bills.open_documents),
            run(s.invoices.open_documents),
            run(s.bank_flows.bank_flows, HISTORY_DAYS),
            run(s.credits.open_credits),
            run(s.company.company_name),
        )
        return assemble(s, DigestReads(*parts))


def cents(value: Decimal) -> Decimal:
    """An amount as an exact Decimal with two places (JSON: ``smartsync_pipeline.api.money``)."""
    return value.quantize(CENT)


def dollars(value: Decimal) -> str:
    """How the method sentences write money: $1,234.56, -$1,234.56."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def day_text(day: date) -> str:
    return f"{day.day} {day:%b} {day.year}"


def assemble(s: DomainServices, reads: DigestReads) -> dict[str, Any]:
    """The digest as plain data: money as exact 2-place Decimals (``api.money.to_json`` writes it as
    JSON), provenance per part. Every AP and AR figure comes from one read of open bills and one of open
    invoices, so they agree with each other."""
    today = s.bills.qbo_sync.today()
    cash, ap_docs, ar_docs, flows, credits = reads.cash, reads.ap, reads.ar, reads.flows, reads.credits
    ap, ar = ap_docs.due_totals(HORIZONS), ar_docs.due_totals(HORIZONS)
    overdue_ap, overdue_ar = ap_docs.overdue(), ar_docs.overdue()
    burn = burn_over(flows, today)
    runway = runway_weeks(cash.total, burn.weekly)
    projection = project(today, cash.total, ap_docs, ar_docs)
    provenance = {
        "cash_on_hand": cash.provenance.public(),
        "accounts_payable": ap_docs.provenance.public(),
        "accounts_receivable": ar_docs.provenance.public(),
        **{f"bank_flows_{k}": p.public() for k, p in flows.provenance.items()},
        **{f"credits_{k}": p.public() for k, p in credits.provenance.items()},
    }
    if reads.company.provenance is not None:
        provenance["company_info"] = reads.company.provenance.public()
    ap_net = ap_docs.total_balance - credits.payable_total
    ar_net = ar_docs.total_balance - credits.receivable_total
    return {
        "business_id": s.business_id,
        "company_name": reads.company.name,
        "company_name_source": reads.company.source,
        "as_of_date": today.isoformat(),
        "cash_on_hand": cents(cash.total),
        "bank_accounts": cash.accounts,
        "ap_open": ap_docs.total_balance,
        "vendor_credits": cents(credits.payable.get("vendor credits", ZERO)),
        "ap_net": cents(ap_net),
        "ar_open": ar_docs.total_balance,
        "credit_memos": cents(credits.receivable.get("credit memos", ZERO)),
        "unapplied_payments": cents(credits.receivable.get("unapplied payments", ZERO)),
        "ar_net": cents(ar_net),
        "credits_not_mirrored": credits.not_mirrored,
        **{f"ap_due_{h}d": v for h, v in ap.items()},
        **{f"ar_due_{h}d": v for h, v in ar.items()},
        "overdue_ap": overdue_ap.total_balance,
        "overdue_ar": overdue_ar.total_balance,
        "overdue_bills": overdue_ap.count,
        "overdue_invoices": overdue_ar.count,
        "net_30d": ar[30] - ap[30],
        "burn_window": {"after": burn.after.isoformat(), "through": today.isoformat(), "weeks": BURN_WEEKS},
        "inflows_91d": cents(burn.inflow),  # 91 days = BURN_WINDOW_DAYS
        "outflows_91d": cents(burn.outflow),
        "weekly_net_burn": cents(burn.weekly),
        "burn_sources": flows.by_entity(burn.after, today),
        "burn_entities_not_mirrored": flows.not_mirrored,
        "runway_weeks": runway,  # a Decimal of weeks to one place (not money), or None
        "runway_method": runway_method(cash.total, burn, runway, flows),
        "runway_note": RUNWAY_DEFINITION,
        "runway_history": runway_history(flows, cash.total, today),
        "top_vendors_owed": s.vendors.rank_owed(ap_docs, 5).items,
        "customers_most_overdue": s.customers.rank_overdue(overdue_ar, 5).items,
        "cash_projection": projection.points,
        "projection_method": projection_method(projection, credits),
        "projection_low": projection.low,
        "projected_cash_below_zero": projection.below_zero,
        "doubtful_ar": cents(projection.doubtful_ar),
        "provenance": provenance,
        "provenance_summary": _summary(provenance),
    }


RUNWAY_DEFINITION = (
    "Runway = cash in the bank accounts today ÷ average weekly net burn over the last 13 weeks; net burn is the "
    "money that left the bank accounts minus the money that came in (transfers between the company's own bank "
    "accounts cancel out)"
)


@dataclass(frozen=True)
class Burn:
    after: date  # the window is after this day, through today
    inflow: Decimal
    outflow: Decimal

    @property
    def weekly(self) -> Decimal:
        """Average net outflow per week, to the cent (positive = burning cash)."""
        return ((self.outflow - self.inflow) / BURN_WEEKS).quantize(CENT)


def burn_over(flows: BankFlows, through: date) -> Burn:
    """Money in and out of the bank accounts in the 13 weeks ending ``through``."""
    after = through - timedelta(days=BURN_WINDOW_DAYS)
    inflow, outflow = flows.totals(after, through)
    return Burn(after, inflow, outflow)


def runway_weeks(cash: Decimal, weekly_burn: Decimal) -> Decimal | None:
    """Weeks the cash lasts at ``weekly_burn`` (1 decimal); None when not burning. No cash: 0.0."""
    if weekly_burn <= 0:
        return None
    return max(cash / weekly_burn, Decimal(0)).quantize(Decimal("0.1"))


def runway_method(cash: Decimal, burn: Burn, runway: Decimal | None, flows: BankFlows) -> str:
    period = f"{day_text(burn.after + timedelta(days=1))} to {day_text(flows.today)}"
    moved = f"{dollars(burn.outflow)} left the bank accounts and {dollars(burn.inflow)} came in ({period})"
    if runway is None and not (burn.inflow or burn.outflow):
        return (
            f"No money moved through the bank accounts over the last {BURN_WEEKS} weeks ({period}), so there is no "
            "burn to measure runway against."
        )
    if runway is None:
        return (
            f"Not burning cash: over the last {BURN_WEEKS} weeks {moved}, so the bank accounts grew by "
            f"{dollars(burn.inflow - burn.outflow)}. Runway is measured only while cash shrinks."
        )
    return (
        f"{dollars(cash)} in the bank accounts ÷ {dollars(burn.weekly)} average weekly net burn = {runway} weeks. "
        f"Over the last {BURN_WEEKS} weeks {moved}: a net {dollars(burn.outflow - burn.inflow)} ÷ {BURN_WEEKS} weeks."
    )


def runway_history(flows: BankFlows, cash_today: Decimal, today: date) -> list[dict[str, Any]]:
    """The last 13 weeks, oldest first: money in and out that week, the bank balance at its end
    (today's balance less the movements since), the trailing 13-week burn and the runway then."""
    out = []
    for week in flows.weeks(BURN_WEEKS, today):
        end = week.week_ending
        cash = cash_today - flows.net_since(end)
        burn = burn_over(flows, end)
        runway = runway_weeks(cash, burn.weekly)
        out.append({
            "week_ending": end.isoformat(), "inflow": cents(week.inflow), "outflow": cents(week.outflow),
            "net_burn": cents(week.net_burn), "cash": cents(cash),
            "weekly_net_burn": cents(burn.weekly), "runway_weeks": runway,
        })  # fmt: skip
    return out


@dataclass(frozen=True)
class Projection:
    points: list[dict[str, Any]]
    overdue_ap: Decimal
    overdue_ar: Decimal
    doubtful_ar: Decimal

    @property
    def low(self) -> dict[str, Any]:
        lowest = min(self.points, key=lambda p: p["cash"])
        return {"week_ending": lowest["week_ending"], "cash": lowest["cash"]}

    @property
    def below_zero(self) -> str | None:
        """The end of the first week the projected balance is below zero (None: it never is)."""
        return next((p["week_ending"] for p in self.points if p["cash"] < 0), None)


def spread(amount: Decimal, parts: int) -> list[Decimal]:
    """``amount`` in ``parts`` equal shares to the cent; the leftover cents go to the first shares."""
    share = (amount / parts).quantize(CENT, rounding=ROUND_DOWN)
    shares = [share] * parts
    left = int(((amount - share * parts) / CENT).to_integral_value())
    for i in range(abs(left)):
        shares[i % parts] += CENT if left > 0 else -CENT
    return shares


def project(
    today: date, cash: Decimal, ap_docs: Documents, ar_docs: Documents, weeks: int = PROJECTION_WEEKS
) -> Projection:
    """Week 0 is today's cash; each later point is the balance at the end of that week. A document due
    in ``0 <= days <= 7`` lands in week 1, ``7k-7 < days <= 7k`` in week k. Overdue bills and invoices
    up to ``DOUBTFUL_AFTER_DAYS`` late are spread evenly over the first ``OVERDUE_SPREAD_WEEKS`` weeks;
    invoices later than that are left out (doubtful)."""
    overdue_ap = ap_docs.balance_due(None, -1)
    overdue_ar = ar_docs.balance_due(-DOUBTFUL_AFTER_DAYS - 1, -1)
    doubtful = ar_docs.balance_due(None, -DOUBTFUL_AFTER_DAYS - 1)
    catch_up = min(OVERDUE_SPREAD_WEEKS, weeks)
    pay_late, collect_late = spread(overdue_ap, catch_up), spread(overdue_ar, catch_up)
    points = [{"week": 0, "week_ending": today.isoformat(), "inflow": ZERO, "outflow": ZERO, "cash": cents(cash)}]
    balance = cash
    for week in range(1, weeks + 1):
        lo, hi = (-1 if week == 1 else 7 * (week - 1)), 7 * week
        inflow = ar_docs.balance_due(lo, hi) + (collect_late[week - 1] if week <= catch_up else ZERO)
        outflow = ap_docs.balance_due(lo, hi) + (pay_late[week - 1] if week <= catch_up else ZERO)
        balance = balance + inflow - outflow
        points.append({
            "week": week, "week_ending": (today + timedelta(days=7 * week)).isoformat(),
            "inflow": cents(inflow), "outflow": cents(outflow), "cash": cents(balance),
        })  # fmt: skip
    return Projection(points, overdue_ap, overdue_ar, doubtful)


def projection_method(p: Projection, credits: Credits | None = None) -> str:
    text = (
        f"Starts at today's cash in the bank accounts; each open bill is paid and each open invoice collected in "
        f"the week it falls due. Overdue bills ({dollars(p.overdue_ap)}) and invoices up to {DOUBTFUL_AFTER_DAYS} "
        f"days late ({dollars(p.overdue_ar)}) are spread evenly over the first {OVERDUE_SPREAD_WEEKS} weeks. "
    )
    if p.doubtful_ar:
        text += (
            f"Invoices more than {DOUBTFUL_AFTER_DAYS} days late ({dollars(p.doubtful_ar)}) are left out as doubtful. "
        )
    text += (
        "Spending and sales not yet in QuickBooks as bills or invoices (payroll, card spend, new sales) are not "
        "included."
    )
    if credits is not None and (credits.payable_total or credits.receivable_total):
        text += (
            f" Open credits have no due date and are not scheduled: {dollars(credits.payable_total)} from vendors, "
            f"{dollars(credits.receivable_total)} to customers (credit memos and unapplied payments)."
        )
    below = p.below_zero
    if below:
        text += f" On these documents the balance falls below zero in the week ending {below}."
    return text


def _summary(parts: dict[str, dict]) -> dict[str, Any]:
    """The whole digest's provenance in the same shape as one part's: the oldest data decides."""
    ages = [p["age_seconds"] for p in parts.values() if p["age_seconds"] is not None]
    return {
        "source": "api" if any(p["source"] == "api" for p in parts.values()) else "mirror",
        "as_of": min((p["as_of"] for p in parts.values() if p["as_of"]), default=None),
        "age_seconds": max(ages) if ages else None,
        "stale": any(p["stale"] for p in parts.values()),
    }

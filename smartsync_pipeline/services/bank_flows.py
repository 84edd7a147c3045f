"""BankFlowService: money that actually moved in and out of the company's bank accounts.

The company's real net burn is read off its bank accounts, not guessed from bills: every mirrored
transaction that posts to an account of type Bank is a movement, in (+) or out (-). Which field of
which entity names the bank side is data, ``CASH_LEGS`` below; an entity joins as soon as the registry
mirrors it (deposits, transfers, sales receipts, refund receipts, journal entries, …), with no code
change here. A transaction's legs are netted first, so a transfer between two of the company's own
bank accounts, or a journal entry moving cash between them, moves nothing.

Money sent into Undeposited Funds (a customer payment not yet banked) is not cash in the bank until
the Deposit that banks it; the Deposit is the movement, so nothing is counted twice.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from smartsync_pipeline.services.answers import CENT
from smartsync_pipeline.smart.sync_service import Provenance, QBOSyncService, check_days

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class CashLeg:
    """One way a transaction entity touches an account: the account reference at ``account`` (dotted
    path, inside each of ``lines`` when given) receives ``sign`` x the amount at ``amount``. With
    ``posting`` (a line's Debit/Credit field) a debit is money in and a credit money out."""

    entity: str
    account: str
    sign: int = 1
    amount: str = "TotalAmt"
    lines: str | None = None
    posting: str | None = None


CASH_LEGS: tuple[CashLeg, ...] = (
    CashLeg("Payment", "DepositToAccountRef", +1),
    CashLeg("SalesReceipt", "DepositToAccountRef", +1),
    CashLeg("Deposit", "DepositToAccountRef", +1),
    CashLeg("BillPayment", "CheckPayment.BankAccountRef", -1),
    CashLeg("Purchase", "AccountRef", -1),
    CashLeg("RefundReceipt", "DepositToAccountRef", -1),
    CashLeg("Transfer", "FromAccountRef", -1, amount="Amount"),
    CashLeg("Transfer", "ToAccountRef", +1, amount="Amount"),
    CashLeg(
        "JournalEntry",
        "JournalEntryLineDetail.AccountRef",
        amount="Amount",
        lines="Line",
        posting="JournalEntryLineDetail.PostingType",
    ),
)

# What the digest means by "the trailing 3 months".
TRAILING_WEEKS = 13


def leg_entities() -> list[str]:
    """Every entity some cash leg reads, in rule order (whether mirrored yet or not)."""
    return list(dict.fromkeys(leg.entity for leg in CASH_LEGS))


@dataclass(frozen=True)
class Movement:
    """One transaction's net movement across the company's bank accounts (+ in, - out)."""

    txn_date: date
    entity: str
    id: str
    amount: Decimal


@dataclass(frozen=True)
class WeekFlows:
    """Money in and out of the bank accounts in the 7 days ending ``week_ending`` (inclusive)."""

    week_ending: date
    inflow: Decimal
    outflow: Decimal

    @property
    def net_burn(self) -> Decimal:
        """Positive when more left than came in."""
        return self.outflow - self.inflow


@dataclass(frozen=True)
class BankFlows:
    """Bank movements dated ``today - days < txn_date <= today``, with the entities they came from."""

    today: date
    days: int
    movements: list[Movement]
    entities: list[str]  # entities read (mirrored in this build)
    not_mirrored: list[str]  # entities a rule names that this build does not mirror yet
    provenance: dict[str, Provenance] = field(default_factory=dict)

    def between(self, after: date, through: date) -> Iterator[Movement]:
        lo, hi = self._span(after, through)
        return iter(self._by_date[lo:hi])

    @cached_property
    def _by_date(self) -> list[Movement]:
        return sorted(self.movements, key=lambda m: m.txn_date)

    @cached_property
    def _index(self) -> tuple[list[date], list[Decimal], list[Decimal]]:
        """Dates of the movements (sorted) and running totals of money in and out: any period's totals
        are two lookups, so 13 weeks of trailing windows cost no more than one pass."""
        days, ins, outs = [], [ZERO], [ZERO]
        for m in self._by_date:
            days.append(m.txn_date)
            ins.append(ins[-1] + (m.amount if m.amount > 0 else ZERO))
            outs.append(outs[-1] + (-m.amount if m.amount < 0 else ZERO))
        return days, ins, outs

    def _span(self, after: date, through: date) -> tuple[int, int]:
        days = self._index[0]
        return bisect.bisect_right(days, after), bisect.bisect_right(days, through)

    def totals(self, after: date, through: date) -> tuple[Decimal, Decimal]:
        """Money in and money out (both >= 0) dated ``after < txn_date <= through``."""
        _, ins, outs = self._index
        lo, hi = self._span(after, through)
        return ins[hi] - ins[lo], outs[hi] - outs[lo]

    def week(self, week_ending: date) -> WeekFlows:
        return WeekFlows(week_ending, *self.totals(week_ending - timedelta(days=7), week_ending))

    def weeks(self, count: int, ending: date | None = None) -> list[WeekFlows]:
        """``count`` consecutive weeks, oldest first, the last one ending ``ending`` (default today)."""
        last = ending or self.today
        return [self.week(last - timedelta(days=7 * k)) for k in range(count - 1, -1, -1)]

    def net_since(self, day: date) -> Decimal:
        """Net money in (+) after ``day`` up to today."""
        inflow, outflow = self.totals(day, self.today)
        return inflow - outflow

    def by_entity(self, after: date, through: date) -> list[dict[str, Any]]:
        """Money in and out per entity in the period, for the digest's method statement."""
        totals: dict[str, list[Any]] = defaultdict(lambda: [ZERO, ZERO, 0])
        for m in self.between(after, through):
            t = totals[m.entity]
            t[0 if m.amount > 0 else 1] += abs(m.amount)
            t[2] += 1
        return [
            {"entity": e, "inflow": totals[e][0], "outflow": totals[e][1], "transactions": totals[e][2]}
            for e in self.entities
            if e in totals
        ]


class BankFlowService:
    def __init__(self, qbo_sync: QBOSyncService) -> None:
        self.qbo_sync = qbo_sync

    def bank_flows(self, days: int = 7 * TRAILING_WEEKS, *, max_age: float | None = None) -> BankFlows:
        """Net bank movement of every mirrored transaction dated within the last ``days`` days."""
        if check_days(days) == 0:
            raise ValueError("days must be at least 1 for bank flows")
        q = self.qbo_sync
        accounts = q.get_accounts(account_type="Bank", max_age=max_age)
        banks = {str(i) for i in accounts.rows["id"]} if len(accounts.rows) else set()
        today = q.today()
        since = today - timedelta(days=days)
        entities = [e for e in leg_entities() if q.mirrors(e)]
        provenance = {"Account": accounts.provenance}
        movements: list[Movement] = []
        for entity in entities:
            # One day of slack in the read: the window is "after today - days", the read "on or after".
            legs = [leg for leg in CASH_LEGS if leg.entity == entity]
            result = q.get_fields_since(entity, days, _fields(legs), max_age=max_age)
            provenance[entity] = result.provenance
            rows = result.rows
            if not len(rows):
                continue
            columns = {name: rows[name].tolist() for name in rows.columns}
            for n, (txn_id, txn_date) in enumerate(zip(columns["id"], columns["txn_date"], strict=True)):
                day = _as_date(txn_date)
                if day is None or not since < day <= today:
                    continue
                amount = sum((_leg_amount_of_row(i, leg, columns, n, banks) for i, leg in enumerate(legs)), ZERO)
                if amount:
                    movements.append(Movement(day, entity, str(txn_id), amount))
        movements.sort(key=lambda m: (m.txn_date, m.entity, m.id))
        missing = [e for e in leg_entities() if e not in entities]
        return BankFlows(today, days, movements, entities, missing, provenance)


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _money(value: Any) -> Decimal:
    if value is None or isinstance(value, bool):
        return ZERO
    try:
        return Decimal(str(value)).quantize(CENT)
    except ArithmeticError:
        return ZERO


def _fields(legs: list[CashLeg]) -> dict[str, str]:
    """The JSON fields one read must return for ``legs``: account and amount per leg, or its lines."""
    out = {}
    for i, leg in enumerate(legs):
        if leg.lines:
            out[f"lines_{i}"] = leg.lines
        else:
            out[f"account_{i}"] = f"{leg.account}.value"
            out[f"amount_{i}"] = leg.amount
    return out


def _leg_amount_of_row(i: int, leg: CashLeg, columns: dict[str, list], n: int, banks: set[str]) -> Decimal:
    """``_leg_amount`` of row ``n`` over the fields ``_fields`` read (only lines are parsed as JSON)."""
    if leg.lines:
        text = columns[f"lines_{i}"][n]
        if not isinstance(text, str):
            return ZERO
        return _leg_amount(leg, {leg.lines: json.loads(text, parse_float=Decimal)}, banks)
    account = columns[f"account_{i}"][n]
    if not isinstance(account, str) or account not in banks:
        return ZERO
    return leg.sign * _money(columns[f"amount_{i}"][n])


def _leg_amount(leg: CashLeg, obj: dict[str, Any], banks: set[str]) -> Decimal:
    """What ``leg`` moves into (+) or out of (-) the bank accounts for one object."""
    parts = _get(obj, leg.lines) if leg.lines else [obj]
    total = ZERO
    for part in parts if isinstance(parts, list) else []:
        account = _get(part, f"{leg.account}.value")
        if account is None or str(account) not in banks:
            continue
        sign = leg.sign
        if leg.posting:
            posting = _get(part, leg.posting)
            sign = 1 if posting == "Debit" else -1 if posting == "Credit" else 0
        total += sign * _money(_get(part, leg.amount))
    return total


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value if type(value) is date else value.date()  # type: ignore[attr-defined]
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None

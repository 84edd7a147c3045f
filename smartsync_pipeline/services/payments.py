"""PaymentService: money actually moving — the recent burn that runway is measured against."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from smartsync_pipeline.services.answers import money, per
from smartsync_pipeline.smart.sync_service import Provenance, QBOSyncService, ReadResult, check_days


@dataclass(frozen=True)
class CashFlowHistory:
    days: int
    inflows: Decimal  # customer payments received
    outflows: Decimal  # bill payments + direct purchases
    provenance: dict[str, Provenance]

    @property
    def net(self) -> Decimal:
        return self.inflows - self.outflows

    @property
    def weekly_net_burn(self) -> Decimal:
        """Average net outflow per week (positive = burning cash)."""
        return per(self.outflows - self.inflows, 7, self.days) if self.days else money(0)


class PaymentService:
    def __init__(self, qbo_sync: QBOSyncService) -> None:
        self.qbo_sync = qbo_sync

    def cash_flow_history(self, days: int = 91, *, max_age: float | None = None) -> CashFlowHistory:
        """Inflows and outflows over the last ``days`` days (transaction dates within the window)."""
        check_days(days)
        if days == 0:
            raise ValueError("days must be at least 1 for a cash-flow history")
        received = self.qbo_sync.get_payments(days, max_age=max_age)
        paid = self.qbo_sync.get_bill_payments(days, max_age=max_age)
        spent = self.qbo_sync.get_purchases(days, max_age=max_age)
        return CashFlowHistory(
            days, _total(received), _total(paid) + _total(spent),
            {"payments": received.provenance, "bill_payments": paid.provenance, "purchases": spent.provenance},
        )  # fmt: skip


def _total(result: ReadResult) -> Decimal:
    return money(result.rows["total_amt"].sum() if len(result.rows) else 0)

"""AccountService: cash on hand, from the company's bank accounts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from smartsync_pipeline.services.answers import money
from smartsync_pipeline.smart.sync_service import Provenance, QBOSyncService


@dataclass(frozen=True)
class CashPosition:
    total: Decimal
    accounts: list[dict]  # id, name, balance (Decimal) of each active bank account
    provenance: Provenance


class AccountService:
    def __init__(self, qbo_sync: QBOSyncService) -> None:
        self.qbo_sync = qbo_sync

    def get_cash_position(self, *, max_age: float | None = None) -> CashPosition:
        """Sum of current balances of active Bank accounts."""
        result = self.qbo_sync.get_accounts(account_type="Bank", max_age=max_age)
        rows = result.rows[result.rows["active"].fillna(True).astype(bool)] if len(result.rows) else result.rows
        accounts = [
            {"id": r["id"], "name": r["name"], "balance": money(r["current_balance"])} for r in rows.to_dict("records")
        ]
        return CashPosition(money(rows["current_balance"].sum() if len(rows) else 0), accounts, result.provenance)

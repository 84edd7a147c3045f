"""CreditService: credits that reduce what the company owes and is owed.

Accounts payable net of vendor credits, accounts receivable net of credit memos and of customer
payments not yet applied to an invoice: what QuickBooks' aging reports net out too. Which entity
carries which open credit is data (``OPEN_CREDITS``); an entity counts once the registry mirrors it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from smartsync_pipeline.services.answers import CENT, money
from smartsync_pipeline.smart.sync_service import Provenance, QBOSyncService

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class OpenCredit:
    """Documents of ``entity`` hold an open credit on the ``side`` (payable or receivable) in the first
    of ``fields`` present on the object."""

    entity: str
    side: str
    fields: tuple[str, ...]
    label: str


OPEN_CREDITS: tuple[OpenCredit, ...] = (
    OpenCredit("VendorCredit", "payable", ("Balance",), "vendor credits"),
    OpenCredit("CreditMemo", "receivable", ("RemainingCredit", "Balance"), "credit memos"),
)


@dataclass(frozen=True)
class Credits:
    """Open credit per source (``"vendor credits"``, ``"credit memos"``, ``"unapplied payments"``) and side."""

    payable: dict[str, Decimal]
    receivable: dict[str, Decimal]
    not_mirrored: list[str]
    provenance: dict[str, Provenance] = field(default_factory=dict)

    @property
    def payable_total(self) -> Decimal:
        return sum(self.payable.values(), ZERO)

    @property
    def receivable_total(self) -> Decimal:
        return sum(self.receivable.values(), ZERO)


class CreditService:
    def __init__(self, qbo_sync: QBOSyncService) -> None:
        self.qbo_sync = qbo_sync

    def open_credits(self, *, max_age: float | None = None) -> Credits:
        q = self.qbo_sync
        sides: dict[str, dict[str, Decimal]] = {"payable": {}, "receivable": {}}
        provenance: dict[str, Provenance] = {}
        missing = []
        for rule in OPEN_CREDITS:
            if not q.mirrors(rule.entity):
                missing.append(rule.entity)
                continue
            result = q.get_objects(rule.entity, max_age=max_age)
            provenance[rule.entity] = result.provenance
            total = ZERO
            for raw in result.rows["raw"] if len(result.rows) else []:
                total += _open_amount(json.loads(raw, parse_float=Decimal), rule.fields)
            sides[rule.side][rule.label] = total
        unapplied = q.get_unapplied_payments(max_age=max_age)
        provenance["Payment"] = unapplied.provenance
        rows = unapplied.rows
        sides["receivable"]["unapplied payments"] = money(rows["unapplied_amt"].sum() if len(rows) else 0)
        return Credits(sides["payable"], sides["receivable"], missing, provenance)


def _open_amount(obj: dict[str, Any], fields: tuple[str, ...]) -> Decimal:
    for name in fields:
        value = obj.get(name)
        if value is not None and not isinstance(value, bool):
            try:
                amount = Decimal(str(value)).quantize(CENT)
            except ArithmeticError:
                return ZERO
            return amount if amount > 0 else ZERO
    return ZERO

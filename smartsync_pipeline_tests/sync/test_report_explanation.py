"""Which QBO changes a difference names: only those that can move that figure (the party, the month,
the bank account; for an edit, a field the figure depends on)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from smartsync_pipeline.sync.report_explanation import ChangedDocument, QBOChanges, explain
from smartsync_pipeline.sync.report_reconciliation import COMPARISONS, Difference, Reconciliation

BY_NAME = {c.name: c for c in COMPARISONS}
BILL = {"Id": "7", "VendorRef": {"value": "56"}, "TxnDate": "2026-10-03", "TotalAmt": 100.0, "Balance": 100.0,
        "Line": [{"Amount": 100.0, "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "80"}}}]}  # fmt: skip


def _explain(name: str, key: str, *changes: ChangedDocument) -> Difference:
    result = Reconciliation(name, "1", None, Decimal("1"), Decimal("2"),
                            [Difference(key, key, "x", Decimal("1"), Decimal("2"), ("Bill 3",))])  # fmt: skip
    since = datetime(2026, 11, 1, tzinfo=UTC)
    (difference,) = explain(result, BY_NAME[name], QBOChanges(since, list(changes), "note")).differences
    return difference


def test_a_payment_applied_to_a_bill_moves_the_aging_not_the_months_net_income() -> None:
    paid = ChangedDocument("Bill", "7", "edited (SyncToken 0 -> 1)", {**BILL, "Balance": 0.0}, BILL)
    assert _explain("ap_aging", "56", paid).documents == (paid.label,)
    assert _explain("ap_aging", "31", paid).documents == ("Bill 3",)  # another vendor: not named
    not_explained = _explain("net_income", "2026-10", paid)
    assert not_explained.documents == ("Bill 3",) and not_explained.cause.startswith("no change in QBO")


def test_a_bill_moved_to_another_month_explains_both_months() -> None:
    moved = ChangedDocument("Bill", "7", "edited (SyncToken 0 -> 1)", {**BILL, "TxnDate": "2026-11-02"}, BILL)
    for month in ("2026-10", "2026-11"):
        assert _explain("net_income", month, moved).documents == (moved.label,)


def test_created_and_deleted_documents_and_bank_accounts() -> None:
    created = ChangedDocument("Purchase", "9", "created", {"Id": "9", "TxnDate": "2026-11-05", "TotalAmt": 5.0,
                                                           "AccountRef": {"value": "35"}})  # fmt: skip
    deleted = ChangedDocument("Bill", "7", "deleted", BILL)
    cash = _explain("cash", "35", created, deleted)
    assert cash.documents == (created.label,) and cash.cause.startswith("QBO changed")
    assert _explain("net_income", "2026-10", created, deleted).documents == (deleted.label,)
    assert _explain("net_income", "2026-11", created, deleted).documents == (created.label,)


def test_what_no_change_explains_is_looked_up_in_qbo_once_per_figure() -> None:
    asked: list[str] = []

    def investigate(key: str) -> list[str]:
        asked.append(key)
        return ["Bill 1 (balance: mirror 0.00 vs QBO 5.00)"] if key == "56" else []

    differences = [Difference(k, k, column, Decimal("1"), Decimal("2"), (f"Bill {k}",))
                   for k, column in (("56", "Total"), ("56", "Current"), ("31", "Total"))]  # fmt: skip
    result = Reconciliation("AP aging", "1", None, Decimal("3"), Decimal("6"), differences)
    since = datetime(2026, 11, 1, tzinfo=UTC)
    out = explain(result, BY_NAME["ap_aging"], QBOChanges(since, [], "note"), investigate).differences
    assert asked == ["56", "31"]
    assert [d.documents for d in out] == [("Bill 1 (balance: mirror 0.00 vs QBO 5.00)",)] * 2 + [("Bill 31",)]
    assert "disagree" in out[0].cause and "how the figure is derived" in out[2].cause

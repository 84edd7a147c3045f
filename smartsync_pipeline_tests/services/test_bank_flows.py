"""The bank-movement rules on hand-made QBO objects: which side of each transaction is the bank, and
that a transaction's legs net out (transfers between the company's own accounts move nothing)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from smartsync_pipeline.services.bank_flows import CASH_LEGS, BankFlows, Movement, _leg_amount, leg_entities

BANKS = {"1", "2"}  # Checking, Savings; 9 is a credit card, 4 Undeposited Funds, 50 an expense account
D = Decimal


def moved(entity: str, obj: dict) -> Decimal:
    return sum((_leg_amount(leg, obj, BANKS) for leg in CASH_LEGS if leg.entity == entity), D("0.00"))


@pytest.mark.parametrize(
    ("entity", "obj", "expected"),
    [
        ("Payment", {"TotalAmt": 120.5, "DepositToAccountRef": {"value": "1"}}, "120.50"),
        ("Payment", {"TotalAmt": 120.5, "DepositToAccountRef": {"value": "4"}}, "0.00"),  # banked by a Deposit
        ("Deposit", {"TotalAmt": "300.00", "DepositToAccountRef": {"value": "2"}}, "300.00"),
        ("SalesReceipt", {"TotalAmt": 80, "DepositToAccountRef": {"value": "1"}}, "80.00"),
        ("RefundReceipt", {"TotalAmt": 15.25, "DepositToAccountRef": {"value": "1"}}, "-15.25"),
        ("BillPayment", {"TotalAmt": 99.99, "PayType": "Check", "CheckPayment": {"BankAccountRef": {"value": "2"}}},
         "-99.99"),
        ("BillPayment", {"TotalAmt": 99.99, "PayType": "CreditCard",
                         "CreditCardPayment": {"CCAccountRef": {"value": "9"}}}, "0.00"),
        ("Purchase", {"TotalAmt": 42, "PaymentType": "Check", "AccountRef": {"value": "1"}}, "-42.00"),
        ("Purchase", {"TotalAmt": 42, "PaymentType": "CreditCard", "AccountRef": {"value": "9"}}, "0.00"),
        ("Transfer", {"Amount": 500, "FromAccountRef": {"value": "1"}, "ToAccountRef": {"value": "2"}}, "0.00"),
        ("Transfer", {"Amount": 500, "FromAccountRef": {"value": "1"}, "ToAccountRef": {"value": "9"}}, "-500.00"),
        ("JournalEntry", {"Line": [
            {"Amount": 70, "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": "1"}}},
            {"Amount": 70, "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"value": "50"}}},
        ]}, "70.00"),
        ("JournalEntry", {"Line": [
            {"Amount": 30, "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"value": "2"}}},
            {"Amount": 30, "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": "1"}}},
        ]}, "0.00"),
        ("JournalEntry", {"Line": "not a list"}, "0.00"),
    ],
)  # fmt: skip
def test_each_transaction_type_moves_its_bank_side(entity, obj, expected):
    assert moved(entity, obj) == D(expected)


def test_rules_cover_every_cash_moving_transaction_of_the_brief():
    assert set(leg_entities()) == {
        "Payment", "SalesReceipt", "Deposit", "BillPayment", "Purchase", "RefundReceipt", "Transfer", "JournalEntry",
    }  # fmt: skip


def test_weeks_split_money_in_and_out_and_the_balance_walks_back():
    today = date(2026, 3, 31)
    flows = BankFlows(
        today, 28,
        [Movement(date(2026, 3, 24), "Payment", "1", D("100.00")),  # the 7 days after 24 Mar exclude it
         Movement(date(2026, 3, 25), "Purchase", "2", D("-40.00")),
         Movement(date(2026, 3, 31), "Deposit", "3", D("15.00"))],
        ["Payment", "Purchase", "Deposit"], [],
    )  # fmt: skip
    last = flows.weeks(2)[-1]
    assert (last.week_ending, last.inflow, last.outflow, last.net_burn) == (today, D("15.00"), D("40.00"), D("25.00"))
    assert flows.weeks(2)[0].inflow == D("100.00")
    assert flows.net_since(date(2026, 3, 24)) == D("-25.00")
    assert flows.by_entity(date(2026, 3, 24), today) == [
        {"entity": "Purchase", "inflow": D("0.00"), "outflow": D("40.00"), "transactions": 1},
        {"entity": "Deposit", "inflow": D("15.00"), "outflow": D("0.00"), "transactions": 1},
    ]


@pytest.mark.parametrize("path", ["TotalAmt') OR 1=1 --", "$.TotalAmt", "Line[0].Amount", ""])
def test_json_field_paths_are_names_only(path):
    from smartsync_pipeline.smart.sync_service import _json_path

    with pytest.raises(ValueError, match="not a QBO field path"):
        _json_path(path)
    assert _json_path("CheckPayment.BankAccountRef.value") == "$.CheckPayment.BankAccountRef.value"

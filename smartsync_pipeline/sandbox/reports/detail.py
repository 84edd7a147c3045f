"""GeneralLedger (every posting per account, with running balances) and TransactionList (every
transaction of the period, one row each), with QBO's column keys (``tx_date``, ``txn_type`` whose id
is the transaction's, ``subt_nat_amount``, …) and the ``columns`` parameter honoured."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from smartsync_pipeline.entities.reports import report
from smartsync_pipeline.sandbox import api_errors as errors
from smartsync_pipeline.sandbox.reports.ledger_view import Ledger, LedgerAccount, Posting
from smartsync_pipeline.sandbox.reports.params import ReportParams
from smartsync_pipeline.sandbox.reports.wire import Column, cell, data_row, money, section

COLUMNS: dict[str, tuple[str, str]] = {  # key -> (title, ColType)
    "tx_date": ("Date", "Date"),
    "txn_type": ("Transaction Type", "String"),
    "doc_num": ("Num", "String"),
    "is_no_post": ("Posting", "String"),
    "name": ("Name", "String"),
    "memo": ("Memo/Description", "String"),
    "account_name": ("Account", "String"),
    "split_acc": ("Split", "String"),
    "other_account": ("Split", "String"),
    "subt_nat_amount": ("Amount", "Money"),
    "rbal_nat_amount": ("Balance", "Money"),
}
# The posting a transaction is listed under: its sign per entity (A/P on a bill, the bank on a payment).
MAIN_SIGN = {
    "Bill": -1, "Invoice": 1, "BillPayment": -1, "Payment": 1, "Purchase": -1, "Deposit": 1, "Transfer": 1,
    "SalesReceipt": 1, "RefundReceipt": -1, "CreditMemo": -1, "VendorCredit": 1, "JournalEntry": 1,
}  # fmt: skip


def _columns(name: str, p: ReportParams) -> list[Column]:
    keys = list(p.columns) or report(name).detail_columns
    unknown = [k for k in keys if k not in COLUMNS]
    if unknown:
        detail = f"unsupported columns {unknown}; the sandbox knows {sorted(COLUMNS)}"
        raise errors.validation(errors.INVALID_VALUE, "Invalid report parameter", detail, "columns")
    return [Column(COLUMNS[k][0], COLUMNS[k][1], k) for k in keys]


def _transactions(postings: Sequence[Posting]) -> dict[tuple[str, str], list[Posting]]:
    out: dict[tuple[str, str], list[Posting]] = defaultdict(list)
    for posting in postings:
        out[(posting.txn_type, posting.txn_id)].append(posting)
    return out


def _txn_cell(posting: Posting) -> dict[str, str]:
    return cell(posting.txn_label, None if posting.txn_id == "0" else posting.txn_id)


def general_ledger(ledger: Ledger, p: ReportParams) -> tuple[list[Column], list[dict[str, Any]]]:
    columns = _columns("GeneralLedger", p)
    accounts = {a.id: a for a in ledger.accounts()}
    in_range = ledger.postings(p.start, p.end)
    siblings = _transactions(in_range)
    by_account: dict[str, list[Posting]] = defaultdict(list)
    for posting in in_range:
        by_account[posting.account_id].append(posting)
    before = ledger.postings(None, p.start - timedelta(days=1))
    year_start = date(p.start.year, 1, 1)
    opening: dict[str, int] = defaultdict(int)
    for posting in before:
        account = accounts.get(posting.account_id)
        if account is not None and (account.on_balance_sheet or posting.txn_date >= year_start):
            opening[posting.account_id] += posting.amount
    rows: list[dict[str, Any]] = []
    width = len(columns)
    for account in sorted(accounts.values(), key=lambda a: a.order):
        postings = by_account.get(account.id, [])
        if not postings and not opening.get(account.id):
            continue
        balance = account.sign * opening.get(account.id, 0)
        lines = [data_row([_value(c.key, None, account, balance, "Beginning Balance") for c in columns])]
        total = 0
        for posting in postings:
            amount = account.sign * posting.amount
            balance += amount
            total += amount
            split = _split(posting, siblings[(posting.txn_type, posting.txn_id)], accounts)
            lines.append(data_row([_value(c.key, posting, account, balance, split, amount) for c in columns]))
        summary = [cell(f"Total for {account.name}")] + [
            cell(money(total) if c.key == "subt_nat_amount" else "") for c in columns[1:]
        ]
        rows.append(section(account.name, lines, summary, None, width, title_id=account.id))
    return columns, rows


def _split(posting: Posting, postings: list[Posting], accounts: dict[str, LedgerAccount]) -> str:
    others = {p.account_id for p in postings if p is not posting and p.account_id != posting.account_id}
    if len(others) == 1:
        account = accounts.get(next(iter(others)))
        return account.name if account else ""
    return "-Split-"


def _value(key: str, posting: Posting | None, account: LedgerAccount, balance: int, text: str,
           amount: int | None = None) -> dict[str, str]:  # fmt: skip
    """One cell of a general-ledger row (``posting`` None: the beginning-balance row)."""
    if posting is None:
        if key == "tx_date":
            return cell(text)
        return cell(money(balance)) if key == "rbal_nat_amount" else cell("")
    if key == "tx_date":
        return cell(posting.txn_date.isoformat())
    if key == "txn_type":
        return _txn_cell(posting)
    if key == "doc_num":
        return cell(posting.doc_number)
    if key == "is_no_post":
        return cell("No")
    if key == "name":
        return cell(posting.party_name, posting.party_id)
    if key == "memo":
        return cell(posting.memo)
    if key == "account_name":
        return cell(account.name, account.id)
    if key in ("split_acc", "other_account"):
        return cell(text)
    if key == "subt_nat_amount":
        return cell(money(amount or 0))
    return cell(money(balance))


def transaction_list(ledger: Ledger, p: ReportParams) -> tuple[list[Column], list[dict[str, Any]]]:
    columns = _columns("TransactionList", p)
    accounts = {a.id: a for a in ledger.accounts()}
    rows = []
    for (txn_type, txn_id), postings in _transactions(ledger.postings(p.start, p.end)).items():
        if txn_id == "0":
            continue  # opening balances are not a document
        sign = MAIN_SIGN.get(txn_type, 1)
        main = next((x for x in postings if (x.amount > 0) == (sign > 0)), postings[0])
        account = accounts.get(main.account_id)
        others = {x.account_id for x in postings if x.account_id != main.account_id}
        other = accounts.get(next(iter(others))) if len(others) == 1 else None
        split = other.name if other else "-Split-"
        values = []
        for c in columns:
            if c.key == "account_name":
                values.append(cell(account.name if account else "", main.account_id))
            elif c.key in ("other_account", "split_acc"):
                values.append(cell(split, other.id if other else None))
            elif c.key == "subt_nat_amount":
                values.append(cell(money(abs(main.amount))))
            elif c.key == "rbal_nat_amount":
                values.append(cell(""))
            else:
                values.append(_value(c.key, main, account or _NO_ACCOUNT, 0, split))
        rows.append(data_row(values))
    return columns, rows


_NO_ACCOUNT = LedgerAccount("", "", "", "", "Asset", 0)

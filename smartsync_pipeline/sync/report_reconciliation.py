"""Reconciling the mirror with QBO's own reports, to the cent (building blocks for issue 12 §3).

Each function reads one DuckDB connection holding both the mirrored entities and the stored report
cells (a published snapshot, or the mirror under its lock) and compares a figure derived from the
mirror with the same figure in QBO's report:

- AP aging per vendor and bucket vs ``AgedPayables``; AR aging per customer vs ``AgedReceivables``;
- cash (bank accounts' balances) vs the ``BalanceSheet``'s bank accounts;
- net income per month (from the mirrored transactions) vs ``ProfitAndLoss``;
- the month's documents vs ``TransactionList`` (which names the documents one side lacks).

The answer is a ``Reconciliation``: ``ok`` when every figure matches exactly, else the differences,
each naming the documents that explain it (mirror ids, or QBO's transaction ids from the report).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import duckdb

ZERO = Decimal("0.00")

# Mirrored transactions that move net income, with their sign (income +, expense -). Entities added to
# the registry that post to income or expense accounts belong here too.
# Journal entries and deposits post to income or expense accounts line by line: (table, the line's
# account ref path, SQL of the line's effect on net income given the line ``l``).
NET_INCOME_LINES: tuple[tuple[str, str, str], ...] = (
    ("journal_entry", "$.JournalEntryLineDetail.AccountRef.value",
     "CASE WHEN l->>'$.JournalEntryLineDetail.PostingType' = 'Credit' THEN 1 ELSE -1 END"),
    ("deposit", "$.DepositLineDetail.AccountRef.value", "1"),
)  # fmt: skip
NET_INCOME_SOURCES: tuple[tuple[str, int], ...] = (
    ("invoice", 1), ("sales_receipt", 1), ("vendor_credit", 1),
    ("bill", -1), ("purchase", -1), ("refund_receipt", -1), ("credit_memo", -1),
)  # fmt: skip
# What else makes up A/P and A/R besides open bills / invoices: credits (negative, by what is left of
# them) and payments not applied to a document. Read from the raw JSON, so an entity counts as soon as
# it is mirrored. (table, party ref, SQL of the open amount; positive = the party owes / is owed less.)
AGING_CREDITS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "payable": (
        ("vendor_credit", "VendorRef", "coalesce(TRY_CAST(raw->>'$.Balance' AS DECIMAL(18,2)), "
                                       "TRY_CAST(raw->>'$.TotalAmt' AS DECIMAL(18,2)))"),
        ("bill_payment", "VendorRef", "TRY_CAST(raw->>'$.TotalAmt' AS DECIMAL(18,2)) - coalesce(list_sum("
                                      "CAST(json_extract(raw, '$.Line[*].Amount') AS DECIMAL(18,2)[])), 0)"),
    ),
    "receivable": (
        ("credit_memo", "CustomerRef", "coalesce(TRY_CAST(raw->>'$.RemainingCredit' AS DECIMAL(18,2)), "
                                       "TRY_CAST(raw->>'$.Balance' AS DECIMAL(18,2)), "
                                       "TRY_CAST(raw->>'$.TotalAmt' AS DECIMAL(18,2)))"),
        ("payment", "CustomerRef", "TRY_CAST(raw->>'$.UnappliedAmt' AS DECIMAL(18,2))"),
    ),
}  # fmt: skip
# How mirrored transactions move a bank account's balance: (table, account ref path, amount path, sign),
# plus journal entry lines (a Debit to a bank account is money in). The same rules as
# ``services.bank_flows.CASH_LEGS`` (the layers keep them apart; a test keeps them equal).
BANK_LEGS: tuple[tuple[str, str, str, int], ...] = (
    ("payment", "DepositToAccountRef", "TotalAmt", 1),
    ("sales_receipt", "DepositToAccountRef", "TotalAmt", 1),
    ("deposit", "DepositToAccountRef", "TotalAmt", 1),
    ("bill_payment", "CheckPayment.BankAccountRef", "TotalAmt", -1),
    ("purchase", "AccountRef", "TotalAmt", -1),
    ("refund_receipt", "DepositToAccountRef", "TotalAmt", -1),
    ("transfer", "FromAccountRef", "Amount", -1),
    ("transfer", "ToAccountRef", "Amount", 1),
)  # fmt: skip
# How TransactionList names the mirrored entities.
TRANSACTION_TYPES = {
    "Bill": "bill", "Invoice": "invoice", "Payment": "payment", "Bill Payment (Check)": "bill_payment",
    "Bill Payment (Credit Card)": "bill_payment", "Expense": "purchase", "Check": "purchase",
    "Credit Card Expense": "purchase", "Cash Expense": "purchase", "Journal Entry": "journal_entry",
    "Deposit": "deposit", "Transfer": "transfer", "Sales Receipt": "sales_receipt", "Refund": "refund_receipt",
    "Credit Memo": "credit_memo", "Vendor Credit": "vendor_credit",
}  # fmt: skip


@dataclass(frozen=True)
class Difference:
    key: str  # vendor / customer / account id, a month, or a document
    label: str
    column: str  # aging bucket, "total", "amount"
    mirror: Decimal
    report: Decimal
    documents: tuple[str, ...] = ()  # "Bill 145", … what explains it
    cause: str = ""  # why they differ, when known (``report_explanation``): "changed in QBO since the last sync"

    @property
    def delta(self) -> Decimal:
        return self.mirror - self.report


@dataclass
class Reconciliation:
    check: str
    realm_id: str
    as_of: date | None
    mirror_total: Decimal
    report_total: Decimal
    differences: list[Difference] = field(default_factory=list)
    compared: int = 0
    note: str = ""  # how the differences were explained (or why they could not be)
    needs_figures: bool = False  # comparing no figure at all proves nothing: not ok

    @property
    def ok(self) -> bool:
        if self.needs_figures and not self.compared:
            return False
        return not self.differences and self.mirror_total == self.report_total

    def describe(self) -> str:
        head = (f"{self.check} of company {self.realm_id}{f' as of {self.as_of}' if self.as_of else ''}: "
                f"mirror {self.mirror_total} vs QBO report {self.report_total}")  # fmt: skip
        if self.needs_figures and not self.compared:
            return head + f" — nothing to compare: {self.note}"
        if self.ok:
            return head + f" — equal to the cent ({self.compared} figures compared)"
        lines = [head + f" — {len(self.differences)} differences:"]
        for d in self.differences[:20]:
            docs = f" ({', '.join(d.documents[:10])}{', …' if len(d.documents) > 10 else ''})" if d.documents else ""
            lines.append(f"  {d.label or d.key} [{d.column}]: mirror {d.mirror} vs report {d.report} "
                         f"(off by {d.delta}){f'; {d.cause}' if d.cause else ''}{docs}")  # fmt: skip
        if len(self.differences) > 20:
            lines.append(f"  … and {len(self.differences) - 20} more")
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)


class MissingReportError(LookupError):
    """The report needed for a reconciliation has not been stored for that company and period."""


def _run(con: duckdb.DuckDBPyConnection, realm_id: str, report: str, period_key: str | None) -> tuple[str, date, dict]:
    where = "realm_id = ? AND report = ?" + (" AND period_key = ?" if period_key else "")
    params = [realm_id, report] + ([period_key] if period_key else [])
    row = con.execute(
        f"SELECT period_key, period_end, params FROM report_run WHERE {where} ORDER BY run_seq DESC LIMIT 1", params
    ).fetchone()
    if row is None:
        raise MissingReportError(f"no {report} report stored for company {realm_id}"
                                 f"{f' and period {period_key}' if period_key else ''}; run it first")  # fmt: skip
    return str(row[0]), row[1], json.loads(row[2])


def _bucket(late: int, period: int, count: int) -> str:
    if late <= 0:
        return "Current"
    k = min(count, (late - 1) // period + 1)
    return f"{(count - 1) * period + 1} and over" if k == count else f"{(k - 1) * period + 1} - {k * period}"


def aging_vs_report(con: duckdb.DuckDBPyConnection, realm_id: str, side: str = "payable") -> Reconciliation:
    """Open bills (invoices) per vendor (customer) and aging bucket, as of the stored aging report's
    date, vs that report, to the cent."""
    report, table, party = (("AgedPayables", "bill", "vendor") if side == "payable"
                            else ("AgedReceivables", "invoice", "customer"))  # fmt: skip
    period_key, as_of, params = _run(con, realm_id, report, "current")
    period, count = int(params.get("aging_period", 30)), int(params.get("num_periods", 4))
    mirror: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    names: dict[str, str] = {}
    docs: dict[str, list[str]] = defaultdict(list)
    for party_id, name, doc_id, due, balance in con.execute(
        f"SELECT {party}_id, {party}_name, id, coalesce(due_date, txn_date), balance FROM {table} "
        "WHERE realm_id = ? AND NOT is_deleted AND balance <> 0 AND txn_date <= ?",
        [realm_id, as_of],
    ).fetchall():
        bucket = _bucket((as_of - due).days, period, count)
        mirror[(party_id, bucket)] += balance
        mirror[(party_id, "Total")] += balance
        names[party_id] = name or names.get(party_id, "")
        docs[party_id].append(f"{table.title()} {doc_id}")
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    for credit_table, ref, open_sql in AGING_CREDITS[side]:
        if credit_table not in tables:
            continue
        for party_id, name, doc_id, day, amount in con.execute(
            f"SELECT raw->>'$.{ref}.value', raw->>'$.{ref}.name', id, txn_date, {open_sql} FROM {credit_table} "
            "WHERE realm_id = ? AND NOT is_deleted AND txn_date <= ?",
            [realm_id, as_of],
        ).fetchall():
            if not amount:
                continue
            bucket = _bucket((as_of - day).days, period, count)
            mirror[(party_id, bucket)] -= amount
            mirror[(party_id, "Total")] -= amount
            names[party_id] = names.get(party_id) or name or ""
            docs[party_id].append(f"{credit_table.replace('_', ' ').title().replace(' ', '')} {doc_id}")
    reported: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for party_id, label, column, amount in con.execute(
        "SELECT row_id, label, column_key, amount FROM report_cell WHERE realm_id = ? AND report = ? "
        "AND period_key = ? AND row_type = 'data' AND amount IS NOT NULL",
        [realm_id, report, period_key],
    ).fetchall():
        reported[(party_id, column)] += amount
        names.setdefault(party_id, label)
    result = Reconciliation(f"{'AP' if side == 'payable' else 'AR'} aging vs {report}", realm_id, as_of,
                            sum((v for (_, c), v in mirror.items() if c == "Total"), ZERO),
                            sum((v for (_, c), v in reported.items() if c == "Total"), ZERO))  # fmt: skip
    for key in sorted(set(mirror) | set(reported), key=lambda k: (names.get(k[0], ""), k)):
        result.compared += 1
        if mirror.get(key, ZERO) != reported.get(key, ZERO):
            party_id, column = key
            result.differences.append(Difference(party_id, names.get(party_id, ""), column, mirror.get(key, ZERO),
                                                 reported.get(key, ZERO), tuple(docs.get(party_id, ()))))  # fmt: skip
    return result


def bank_movements_after(
    con: duckdb.DuckDBPyConnection, realm_id: str, banks: Collection[str], after: date
) -> dict[str, tuple[Decimal, list[str]]]:
    """Per bank account, the net money the mirrored transactions dated after ``after`` moved into it
    (+) or out of it (-), and those transactions ("Payment 12", …)."""
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    wanted = sorted(banks)
    out: dict[str, tuple[Decimal, list[str]]] = {}

    def add(table: str, account: str, doc_id: str, amount: Decimal | None) -> None:
        if not amount:
            return
        total, docs = out.get(account, (ZERO, []))
        docs.append(f"{table.replace('_', ' ').title().replace(' ', '')} {doc_id}")
        out[account] = (total + amount, docs)

    if not wanted:
        return out
    for table, ref, amount_path, sign in BANK_LEGS:
        if table not in tables:
            continue
        for account, doc_id, amount in con.execute(
            f"SELECT raw->>'$.{ref}.value' AS account, id, {sign} * TRY_CAST(raw->>'$.{amount_path}' AS DECIMAL(18,2)) "
            f"FROM {table} WHERE realm_id = ? AND NOT is_deleted AND txn_date > ? AND account IN ?",
            [realm_id, after, wanted],
        ).fetchall():
            add(table, account, doc_id, amount)
    if "journal_entry" in tables:
        for account, doc_id, amount in con.execute(
            """SELECT l->>'$.JournalEntryLineDetail.AccountRef.value' AS account, d.id,
                      sum(CASE l->>'$.JournalEntryLineDetail.PostingType' WHEN 'Debit' THEN 1
                          WHEN 'Credit' THEN -1 ELSE 0 END * TRY_CAST(l->>'$.Amount' AS DECIMAL(18,2)))
               FROM journal_entry d, unnest(CAST(json_extract(d.raw, '$.Line') AS JSON[])) AS t(l)
               WHERE d.realm_id = ? AND NOT d.is_deleted AND d.txn_date > ? AND account IN ?
               GROUP BY ALL""",
            [realm_id, after, wanted],
        ).fetchall():
            add("journal_entry", account, doc_id, amount)
    return out


def cash_vs_balance_sheet(
    con: duckdb.DuckDBPyConnection, realm_id: str, period_key: str | None = None
) -> Reconciliation:
    """Bank accounts' balances in the mirror vs the bank accounts of the newest stored BalanceSheet
    (or the one of ``period_key``, a closed month's included), per account. The mirror holds today's
    ``CurrentBalance``, which counts every transaction whatever its date; a BalanceSheet counts those
    dated up to its date, so the mirrored transactions dated after it are taken back out first."""
    key, as_of, _ = _run(con, realm_id, "BalanceSheet", period_key)
    mirror = {
        str(i): (n, b or ZERO)
        for i, n, b in con.execute(
            "SELECT id, name, current_balance FROM account WHERE realm_id = ? AND NOT is_deleted "
            "AND account_type = 'Bank'",
            [realm_id],
        ).fetchall()
    }
    later = bank_movements_after(con, realm_id, mirror, as_of)
    for account, (moved, _) in later.items():
        name, balance = mirror[account]
        mirror[account] = (name, balance - moved)
    reported = {
        str(i): (n, a)
        for i, n, a in con.execute(
            "SELECT row_id, label, amount FROM report_cell WHERE realm_id = ? AND report = 'BalanceSheet' "
            "AND period_key = ? AND row_type = 'data' AND group_name = 'BankAccounts' AND column_key = 'total'",
            [realm_id, key],
        ).fetchall()
    }
    result = Reconciliation("cash vs BalanceSheet bank accounts", realm_id, as_of,
                            sum((b for _, b in mirror.values()), ZERO),
                            sum((a for _, a in reported.values()), ZERO), needs_figures=True)  # fmt: skip
    for account in sorted(set(mirror) | set(reported)):
        result.compared += 1
        m = mirror.get(account, ("", ZERO))[1]
        r = reported.get(account, ("", ZERO))[1]
        if m != r:
            name = (mirror.get(account) or reported.get(account) or ("", ZERO))[0]
            docs = (f"Account {account}", *later.get(account, (ZERO, []))[1])
            result.differences.append(Difference(account, name, "balance", m, r, docs))
    if not result.compared:
        result.note = "no bank account in the mirror nor in the BalanceSheet"
    return result


def net_income_vs_profit_and_loss(
    con: duckdb.DuckDBPyConnection, realm_id: str, months: Collection[str] | None = None
) -> Reconciliation:
    """Net income per month derived from the mirrored transactions vs every stored monthly
    ProfitAndLoss of the company (or those of ``months``, ``YYYY-MM``); a month that differs names its
    mirrored documents."""
    rows = con.execute(
        "SELECT r.period_key, c.amount FROM report_run r JOIN report_cell c USING (realm_id, report, period_key) "
        "WHERE r.realm_id = ? AND r.report = 'ProfitAndLoss' AND c.row_type = 'grand_total' "
        "AND c.group_name = 'NetIncome' AND c.column_key = 'total' AND length(r.period_key) = 7 "
        "AND r.run_seq = (SELECT max(run_seq) FROM report_run x WHERE x.realm_id = r.realm_id "
        "AND x.report = r.report AND x.period_key = r.period_key)",
        [realm_id],
    ).fetchall()
    empty = {
        k for (k,) in con.execute(
            "SELECT period_key FROM report_run WHERE realm_id = ? AND report = 'ProfitAndLoss' AND no_data",
            [realm_id],
        ).fetchall()
    }  # fmt: skip
    reported = {k: a for k, a in rows} | {k: ZERO for k in empty if k not in dict(rows)}
    if months is not None:
        wanted = set(months)
        missing = sorted(wanted - set(reported))
        if missing:
            raise MissingReportError(f"no ProfitAndLoss report stored for company {realm_id} and month(s) "
                                     f"{', '.join(missing)}; run it first")  # fmt: skip
        reported = {k: v for k, v in reported.items() if k in wanted}
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    mirror: dict[str, Decimal] = defaultdict(lambda: ZERO)
    docs: dict[str, list[str]] = defaultdict(list)
    for table, sign in NET_INCOME_SOURCES:
        if table not in tables:
            continue
        for month, doc_id, amount in con.execute(
            f"SELECT strftime(txn_date, '%Y-%m'), id, total_amt FROM {table} WHERE realm_id = ? AND NOT is_deleted "
            "AND total_amt <> 0",
            [realm_id],
        ).fetchall():
            if month in reported:
                mirror[month] += sign * amount
                docs[month].append(f"{table.title()} {doc_id}")
    for table, account_path, sign_sql in NET_INCOME_LINES:
        if table not in tables:
            continue
        for month, doc_id, amount in con.execute(
            f"""SELECT strftime(TRY_CAST(d.raw->>'$.TxnDate' AS DATE), '%Y-%m'), d.id,
                       sum({sign_sql} * TRY_CAST(l->>'$.Amount' AS DECIMAL(18,2)))
                FROM {table} d, unnest(CAST(json_extract(d.raw, '$.Line') AS JSON[])) AS t(l)
                JOIN account a ON a.realm_id = d.realm_id AND a.id = l->>'{account_path}'
                WHERE d.realm_id = ? AND NOT d.is_deleted AND a.classification IN ('Revenue', 'Expense')
                GROUP BY ALL""",
            [realm_id],
        ).fetchall():
            if month in reported and amount:
                mirror[month] += amount
                docs[month].append(f"{table.replace('_', ' ').title().replace(' ', '')} {doc_id}")
    result = Reconciliation("net income by month vs ProfitAndLoss", realm_id, None,
                            sum(mirror.values(), ZERO), sum(reported.values(), ZERO))  # fmt: skip
    for month in sorted(reported):
        result.compared += 1
        if mirror.get(month, ZERO) != reported[month]:
            result.differences.append(Difference(month, month, "net income", mirror.get(month, ZERO),
                                                 reported[month], tuple(docs.get(month, ()))))  # fmt: skip
    return result


_AMOUNT_SQL = "coalesce(TRY_CAST(raw->>'$.TotalAmt' AS DECIMAL(18,2)), TRY_CAST(raw->>'$.Amount' AS DECIMAL(18,2)))"


def documents_vs_transaction_list(con: duckdb.DuckDBPyConnection, realm_id: str, period_key: str) -> Reconciliation:
    """The mirrored documents dated in a month vs QBO's TransactionList of that month: each document
    one side lacks, or whose amount differs, is named."""
    _, _, params = _run(con, realm_id, "TransactionList", period_key)
    start, end = params["start_date"], params["end_date"]
    reported: dict[tuple[str, str], Decimal] = {}
    for label, txn_id, amount in con.execute(
        "SELECT t.value, t.value_id, a.amount FROM report_cell t JOIN report_cell a "
        "USING (realm_id, report, period_key, part_start, row_number) WHERE t.realm_id = ? "
        "AND t.report = 'TransactionList' AND t.period_key = ? AND t.column_key = 'txn_type' "
        "AND a.column_key = 'subt_nat_amount' AND t.row_type = 'data'",
        [realm_id, period_key],
    ).fetchall():
        table = TRANSACTION_TYPES.get(label)
        if table is not None:
            reported[(table, str(txn_id))] = abs(amount)
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    mirror: dict[tuple[str, str], Decimal] = {}
    for table in sorted(set(TRANSACTION_TYPES.values()) & tables):
        for doc_id, amount in con.execute(
            f"SELECT id, {_AMOUNT_SQL} AS amount FROM {table} WHERE realm_id = ? AND NOT is_deleted "
            "AND TRY_CAST(raw->>'$.TxnDate' AS DATE) BETWEEN ? AND ?",
            [realm_id, start, end],
        ).fetchall():
            if amount:
                mirror[(table, str(doc_id))] = abs(amount)
    result = Reconciliation(f"documents of {period_key} vs TransactionList", realm_id, None,
                            sum(mirror.values(), ZERO), sum(reported.values(), ZERO))  # fmt: skip
    for key in sorted(set(mirror) | set(reported)):
        result.compared += 1
        m, r = mirror.get(key, ZERO), reported.get(key, ZERO)
        if m != r:
            doc = f"{key[0].replace('_', ' ').title().replace(' ', '')} {key[1]}"
            where = "only in QBO" if key not in mirror else "only in the mirror" if key not in reported else "amount"
            result.differences.append(Difference(doc, f"{doc} ({where})", "amount", m, r, (doc,)))
    return result


@dataclass(frozen=True)
class Scope:
    """The documents of one entity behind one figure, as a QBO query filter and as SQL over the mirror."""

    where: tuple[tuple[str, str, str], ...]  # QBO query conditions (field, op, value), checked by the builder
    sql: str  # predicate on the mirror table (``raw``, ``id``), with ``?`` for ``params``
    params: tuple[Any, ...]


@dataclass(frozen=True)
class Comparison:
    """One figure checked against one QBO report: the asset check on that report's asset and
    ``smartsync reconcile --reports`` both iterate over ``COMPARISONS``."""

    name: str  # check name suffix and CLI row: "ap_aging"
    report: str  # the QBO report (registry name) whose stored run is compared
    title: str
    meaning: str  # what equality proves, in the owner's words (check description, README)
    entities: tuple[str, ...]  # QBO entities whose changes move the figure (explanations ask QBO about these)
    compare: Callable[[duckdb.DuckDBPyConnection, str, str | None], Reconciliation]  # (con, realm, period_key)
    moves: Callable[[str, dict[str, Any], str], bool]  # (entity, QBO document, difference key): does it move it?
    fields: tuple[str, ...] = ()  # an edit changing none of these top-level fields cannot move the figure
    scope: Callable[[str, str], Scope | None] = lambda entity, key: None  # (entity, difference key)
    per_month: bool = False  # compared month by month (the CLI runs the report per month), else as of today

    def edit_matters(self, qbo: dict[str, Any], mirror: dict[str, Any]) -> bool:
        """Whether an edit from the mirror's copy to QBO's can move this figure at all."""
        return not self.fields or any(qbo.get(f) != mirror.get(f) for f in self.fields)

    def run(self, con: duckdb.DuckDBPyConnection, realm_id: str, period_key: str | None = None) -> Reconciliation:
        return self.compare(con, realm_id, period_key)


def _names_party(*refs: str) -> Callable[[str, dict[str, Any], str], bool]:
    def moves(entity: str, doc: dict[str, Any], key: str) -> bool:
        return any(str((doc.get(r) or {}).get("value")) == key for r in refs)

    return moves


def _dated_in(entity: str, doc: dict[str, Any], key: str) -> bool:
    return str(doc.get("TxnDate", ""))[:7] == key


def _account_refs(node: Any) -> set[str]:
    """Every ``…AccountRef`` value anywhere in a document (lines included)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k.endswith("AccountRef") and isinstance(v, dict):
                    found.add(str(v.get("value")))
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _touches_account(entity: str, doc: dict[str, Any], key: str) -> bool:
    return str(doc.get("Id")) == key if entity == "Account" else key in _account_refs(doc)


def _party_scope(ref: str) -> Callable[[str, str], Scope | None]:
    def scope(entity: str, key: str) -> Scope | None:
        if not key.isdigit():
            return None
        return Scope(((ref, "=", key),), f"raw->>'$.{ref}.value' = ?", (key,))

    return scope


def _month_scope(entity: str, key: str) -> Scope | None:
    try:
        first = date.fromisoformat(f"{key}-01")
    except ValueError:
        return None
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return Scope((("TxnDate", ">=", first.isoformat()), ("TxnDate", "<=", last.isoformat())),
                 "TRY_CAST(raw->>'$.TxnDate' AS DATE) BETWEEN ? AND ?", (first, last))  # fmt: skip


def _is_document(entity: str, doc: dict[str, Any], key: str) -> bool:
    return f"{entity} {doc.get('Id')}" == key


def _document_scope(entity: str, key: str) -> Scope | None:
    name, _, doc_id = key.partition(" ")
    return Scope((("Id", "=", doc_id),), "id = ?", (doc_id,)) if name == entity and doc_id.isdigit() else None


def _newest_month(con: duckdb.DuckDBPyConnection, realm_id: str, report_name: str) -> str:
    row = con.execute(
        "SELECT period_key FROM report_run WHERE realm_id = ? AND report = ? AND length(period_key) = 7 "
        "ORDER BY run_seq DESC LIMIT 1",
        [realm_id, report_name],
    ).fetchone()
    if row is None:
        raise MissingReportError(f"no monthly {report_name} report stored for company {realm_id}; run it first")
    return str(row[0])


def _account_scope(entity: str, key: str) -> Scope | None:
    return Scope((("Id", "=", key),), "id = ?", (key,)) if entity == "Account" and key.isdigit() else None


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "ap_aging", "AgedPayables", "AP aging",
        "open bills less unapplied vendor credits and bill payments, per vendor and aging bucket, equal "
        "QuickBooks' A/P Aging Summary",
        ("Bill", "VendorCredit", "BillPayment"),
        lambda con, realm, _period: aging_vs_report(con, realm, "payable"),
        _names_party("VendorRef"),
        ("Balance", "DueDate", "TxnDate", "TotalAmt", "VendorRef", "Line", "RemainingCredit"),
        _party_scope("VendorRef"),
    ),
    Comparison(
        "ar_aging", "AgedReceivables", "AR aging",
        "open invoices less credit memos and unapplied payments, per customer and aging bucket, equal "
        "QuickBooks' A/R Aging Summary",
        ("Invoice", "CreditMemo", "Payment"),
        lambda con, realm, _period: aging_vs_report(con, realm, "receivable"),
        _names_party("CustomerRef"),
        ("Balance", "DueDate", "TxnDate", "TotalAmt", "CustomerRef", "Line", "UnappliedAmt", "RemainingCredit"),
        _party_scope("CustomerRef"),
    ),
    Comparison(
        "cash", "BalanceSheet", "cash",
        "every bank account's balance in the mirror equals its line in the Balance Sheet's bank accounts",
        ("Account", "Deposit", "Transfer", "Purchase", "Payment", "BillPayment", "SalesReceipt", "RefundReceipt",
         "JournalEntry"),
        cash_vs_balance_sheet,
        _touches_account,
        ("CurrentBalance", "TotalAmt", "Amount", "TxnDate", "Line", "DepositToAccountRef", "AccountRef",
         "FromAccountRef", "ToAccountRef", "CheckPayment", "CreditCardPayment", "PayType"),
        _account_scope,
    ),
    Comparison(
        "net_income", "ProfitAndLoss", "net income by month",
        "income less expenses of the mirrored transactions dated in a month equal that month's Profit and "
        "Loss net income",
        ("Invoice", "SalesReceipt", "VendorCredit", "Bill", "Purchase", "RefundReceipt", "CreditMemo",
         "JournalEntry", "Deposit"),
        lambda con, realm, period: net_income_vs_profit_and_loss(con, realm, [period] if period else None),
        _dated_in,
        ("TxnDate", "TotalAmt", "Line"),
        _month_scope,
        per_month=True,
    ),
    Comparison(
        "documents", "TransactionList", "documents of the month",
        "every mirrored transaction dated in the month is in the Transaction List with the same amount, and "
        "the list holds no other",
        ("Bill", "Invoice", "Payment", "BillPayment", "Purchase", "JournalEntry", "Deposit", "Transfer",
         "SalesReceipt", "RefundReceipt", "CreditMemo", "VendorCredit"),
        lambda con, realm, period: documents_vs_transaction_list(
            con, realm, period or _newest_month(con, realm, "TransactionList")),
        _is_document,
        ("TotalAmt", "Amount", "TxnDate"),
        _document_scope,
        per_month=True,
    ),
)  # fmt: skip

_COMPARISONS_BY_REPORT = {c.report: c for c in COMPARISONS}


def comparison_for(report_name: str) -> Comparison | None:
    """The comparison that checks ``report_name`` (None for reports nothing is compared with)."""
    return _COMPARISONS_BY_REPORT.get(report_name)


__all__ = [
    "COMPARISONS",
    "NET_INCOME_SOURCES",
    "Comparison",
    "Difference",
    "MissingReportError",
    "Reconciliation",
    "Scope",
    "aging_vs_report",
    "bank_movements_after",
    "cash_vs_balance_sheet",
    "comparison_for",
    "documents_vs_transaction_list",
    "net_income_vs_profit_and_loss",
]

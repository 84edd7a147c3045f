"""Analyst-facing views, part of the schema (and so of every published snapshot).

They read only live (non-deleted) rows and compute ages against ``current_date``, so an analyst's
``SELECT * FROM ap_aging`` answers "as of today, from the newest published sync". Each version of the
views is frozen under its schema version (``V2_VIEWS``): the migration of that version creates exactly
that text. A change to a view is a new ``V<n>_VIEWS`` plus a migration, and ``ANALYST_VIEWS`` names
the newest one.
"""

from __future__ import annotations

_AGING_BUCKETS = """
    sum(CASE WHEN {due} >= current_date THEN {bal} ELSE 0 END)::DECIMAL(18,2) AS current_amt,
    sum(CASE WHEN current_date - {due} BETWEEN 1 AND 30 THEN {bal} ELSE 0 END)::DECIMAL(18,2) AS days_1_30,
    sum(CASE WHEN current_date - {due} BETWEEN 31 AND 60 THEN {bal} ELSE 0 END)::DECIMAL(18,2) AS days_31_60,
    sum(CASE WHEN current_date - {due} BETWEEN 61 AND 90 THEN {bal} ELSE 0 END)::DECIMAL(18,2) AS days_61_90,
    sum(CASE WHEN current_date - {due} > 90 THEN {bal} ELSE 0 END)::DECIMAL(18,2) AS days_over_90,
    sum({bal})::DECIMAL(18,2) AS total_open,
    count(*) AS open_count
"""


def _v2_aging(table: str, party: str) -> str:
    buckets = _AGING_BUCKETS.format(due="coalesce(due_date, txn_date)", bal="balance")
    return f"""
CREATE OR REPLACE VIEW {"ap_aging" if table == "bill" else "ar_aging"} AS
SELECT realm_id, {party}_id, any_value({party}_name) AS {party}_name,
{buckets}
FROM {table}
WHERE NOT is_deleted AND balance > 0
GROUP BY realm_id, {party}_id
ORDER BY realm_id, total_open DESC
"""


# Schema version 2's views, as shipped. Never edit: add V<n>_VIEWS and a migration instead.
V2_VIEWS: dict[str, str] = {
    "bills_due": """
CREATE OR REPLACE VIEW bills_due AS
SELECT realm_id, id AS bill_id, doc_number, vendor_id, vendor_name, txn_date, due_date,
       total_amt, balance, currency_id,
       (due_date - current_date) AS days_until_due,
       due_date < current_date AS is_overdue
FROM bill
WHERE NOT is_deleted AND balance > 0
ORDER BY due_date, bill_id
""",
    "ap_aging": _v2_aging("bill", "vendor"),
    "ar_aging": _v2_aging("invoice", "customer"),
    "cash_position": """
CREATE OR REPLACE VIEW cash_position AS
SELECT realm_id, id AS account_id, name, account_sub_type, current_balance, currency_id,
       sum(current_balance) OVER (PARTITION BY realm_id) AS realm_cash_total
FROM account
WHERE NOT is_deleted AND coalesce(active, true) AND account_type = 'Bank'
ORDER BY realm_id, current_balance DESC
""",
}

# The current views: those of the newest schema version that changed them.
ANALYST_VIEWS: dict[str, str] = V2_VIEWS

# --- line tables (schema version 4) ------------------------------------------------------------------
# One row per line of a transaction, read out of the mirrored JSON: what reports group by (account,
# item, class, department, journal posting side, linked transactions). They are views, so they can
# never disagree with the rows they come from and cost the sync nothing; ``txn_line`` is all of them.

_DETAILS = ("AccountBasedExpenseLineDetail", "ItemBasedExpenseLineDetail", "SalesItemLineDetail",
            "JournalEntryLineDetail", "DepositLineDetail")  # fmt: skip


def _line(path: str) -> str:
    return f"json_extract_string(l.j, '$.{path}')"


def _first(field: str, details: tuple[str, ...] = _DETAILS) -> str:
    return "coalesce(" + ", ".join(_line(f"{d}.{field}") for d in details) + ")"


def _v4_line_view(table: str, txn_type: str) -> str:
    item = _first("ItemRef.value", ("SalesItemLineDetail", "ItemBasedExpenseLineDetail"))
    account = _first(
        "AccountRef.value", ("AccountBasedExpenseLineDetail", "JournalEntryLineDetail", "DepositLineDetail")
    )
    item_account = (
        "CASE WHEN json_extract_string(l.j, '$.DetailType') = 'SalesItemLineDetail' "
        "THEN i.income_account_id ELSE coalesce(i.expense_account_id, i.income_account_id) END"
    )
    return f"""
CREATE OR REPLACE VIEW {table}_line AS
SELECT t.realm_id, '{txn_type}' AS txn_type, t.id AS txn_id, t.txn_date, l.n AS line_num,
       {_line("Id")} AS line_id,
       {_line("DetailType")} AS detail_type,
       TRY_CAST({_line("Amount")} AS DECIMAL(18,2)) AS amount,
       {_line("Description")} AS description,
       coalesce({account}, {item_account}) AS account_id,
       {item} AS item_id,
       {_first("ClassRef.value")} AS class_id,
       coalesce({_first("DepartmentRef.value")}, json_extract_string(t.raw, '$.DepartmentRef.value')) AS department_id,
       {_line("JournalEntryLineDetail.PostingType")} AS posting_type,
       {_line("LinkedTxn[0].TxnId")} AS linked_txn_id,
       {_line("LinkedTxn[0].TxnType")} AS linked_txn_type
FROM {table} t,
     LATERAL (SELECT unnest(json_extract(t.raw, '$.Line[*]')) AS j,
                     generate_subscripts(json_extract(t.raw, '$.Line[*]'), 1) AS n) l
LEFT JOIN item i ON i.realm_id = t.realm_id AND i.id = {item} AND NOT i.is_deleted
WHERE NOT t.is_deleted
"""


V4_LINE_TABLES: tuple[tuple[str, str], ...] = (
    ("bill", "Bill"), ("bill_payment", "BillPayment"), ("invoice", "Invoice"), ("payment", "Payment"),
    ("purchase", "Purchase"), ("credit_memo", "CreditMemo"), ("vendor_credit", "VendorCredit"),
    ("sales_receipt", "SalesReceipt"), ("refund_receipt", "RefundReceipt"), ("deposit", "Deposit"),
    ("journal_entry", "JournalEntry"), ("estimate", "Estimate"), ("purchase_order", "PurchaseOrder"),
)  # fmt: skip

# Schema version 4's line views, as shipped. Never edit: add V<n>_LINE_VIEWS and a migration instead.
V4_LINE_VIEWS: dict[str, str] = {
    **{f"{table}_line": _v4_line_view(table, txn_type) for table, txn_type in V4_LINE_TABLES},
    "txn_line": "CREATE OR REPLACE VIEW txn_line AS "
    + " UNION ALL ".join(f"SELECT * FROM {table}_line" for table, _ in V4_LINE_TABLES),
}

# The current line views.
LINE_VIEWS: dict[str, str] = V4_LINE_VIEWS

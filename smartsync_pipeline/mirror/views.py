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

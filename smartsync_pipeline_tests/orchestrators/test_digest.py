"""The runway digest equals the same figures computed independently from the sandbox's own data.

``independent_figures`` is plain Python over the sandbox's objects, written entity by entity without
any smartsync code: cash from the Bank accounts, AP/AR by due date and net of credits, and the bank
movements of the trailing 13 weeks (each transaction type's bank side spelled out by hand).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from markupsafe import escape

from smartsync_pipeline.entities import find_entity
from smartsync_pipeline.orchestrators.digest import (
    DOUBTFUL_AFTER_DAYS,
    OVERDUE_SPREAD_WEEKS,
    PROJECTION_WEEKS,
    DigestDataOrchestrator,
    dollars,
)
from smartsync_pipeline.orchestrators.digest_report import to_html, to_markdown

D = Decimal
CENT = D("0.01")


def cents(x) -> Decimal:
    return D(str(x)).quantize(CENT)


def _ref(obj, *path):
    for p in path:
        obj = (obj or {}).get(p)
    return None if obj is None else str(obj)


def bank_movements(company, banks: set[str]) -> list[tuple[date, Decimal]]:
    """Each transaction's net effect on the bank accounts, spelled out per QBO transaction type."""

    def objects(name):
        return company.sandbox_objects(name)["active"] if find_entity(name) else []

    out = []
    for p in objects("Payment"):
        if _ref(p, "DepositToAccountRef", "value") in banks:
            out.append((p["TxnDate"], cents(p["TotalAmt"])))
    for p in objects("SalesReceipt") + objects("Deposit"):
        if _ref(p, "DepositToAccountRef", "value") in banks:
            out.append((p["TxnDate"], cents(p["TotalAmt"])))
    for p in objects("RefundReceipt"):
        if _ref(p, "DepositToAccountRef", "value") in banks:
            out.append((p["TxnDate"], -cents(p["TotalAmt"])))
    for p in objects("BillPayment"):
        if p.get("PayType") == "Check" and _ref(p, "CheckPayment", "BankAccountRef", "value") in banks:
            out.append((p["TxnDate"], -cents(p["TotalAmt"])))
    for p in objects("Purchase"):
        if _ref(p, "AccountRef", "value") in banks:
            out.append((p["TxnDate"], -cents(p["TotalAmt"])))
    for t in objects("Transfer"):
        net = D(0)
        if _ref(t, "FromAccountRef", "value") in banks:
            net -= cents(t["Amount"])
        if _ref(t, "ToAccountRef", "value") in banks:
            net += cents(t["Amount"])
        out.append((t["TxnDate"], net))
    for j in objects("JournalEntry"):
        net = D(0)
        for line in j.get("Line") or []:
            detail = line.get("JournalEntryLineDetail") or {}
            if _ref(detail, "AccountRef", "value") in banks:
                net += cents(line["Amount"]) * (1 if detail.get("PostingType") == "Debit" else -1)
        out.append((j["TxnDate"], net))
    return [(date.fromisoformat(d[:10]), a) for d, a in out if a]


def independent_figures(company, today: date) -> dict:
    accounts = company.sandbox_objects("Account")["active"]
    bills = company.sandbox_objects("Bill")["active"]
    invoices = company.sandbox_objects("Invoice")["active"]
    payments = company.sandbox_objects("Payment")["active"]
    out: dict = {
        "cash_on_hand": sum(
            (cents(a["CurrentBalance"]) for a in accounts if a.get("AccountType") == "Bank" and a.get("Active", True)),
            D("0"),
        )
    }

    def open_docs(docs):
        return [(date.fromisoformat(d["DueDate"]), cents(d["Balance"])) for d in docs if cents(d["Balance"]) > 0]

    ap, ar = open_docs(bills), open_docs(invoices)

    def total(docs, first=None, last=None):
        return sum((b for due, b in docs if (first is None or due >= first) and (last is None or due <= last)), D(0))

    for h in (7, 30, 60):
        out[f"ap_due_{h}d"] = total(ap, last=today + timedelta(days=h))
        out[f"ar_due_{h}d"] = total(ar, last=today + timedelta(days=h))
    out["overdue_ap"] = total(ap, last=today - timedelta(days=1))
    out["overdue_ar"] = total(ar, last=today - timedelta(days=1))
    out["net_30d"] = out["ar_due_30d"] - out["ap_due_30d"]
    out["ap_open"], out["ar_open"] = total(ap), total(ar)
    out["unapplied_payments"] = sum((cents(p.get("UnappliedAmt") or 0) for p in payments), D(0))
    vendor_credits = company.sandbox_objects("VendorCredit")["active"] if find_entity("VendorCredit") else []
    memos = company.sandbox_objects("CreditMemo")["active"] if find_entity("CreditMemo") else []
    out["vendor_credits"] = sum((max(cents(v.get("Balance") or 0), D(0)) for v in vendor_credits), D(0))
    out["credit_memos"] = sum((max(cents(m.get("RemainingCredit", m.get("Balance")) or 0), D(0)) for m in memos), D(0))
    out["ap_net"] = out["ap_open"] - out["vendor_credits"]
    out["ar_net"] = out["ar_open"] - out["credit_memos"] - out["unapplied_payments"]

    banks = {str(a["Id"]) for a in accounts if a.get("AccountType") == "Bank"}
    moves = bank_movements(company, banks)
    window = [a for d, a in moves if today - timedelta(days=91) < d <= today]
    out["inflows_91d"] = sum((a for a in window if a > 0), D(0))
    out["outflows_91d"] = -sum((a for a in window if a < 0), D(0))
    out["weekly_net_burn"] = ((out["outflows_91d"] - out["inflows_91d"]) / 13).quantize(CENT)
    out["_moves"] = moves
    out["_ap"], out["_ar"] = ap, ar
    return out


MONEY = (
    "cash_on_hand", "ap_due_7d", "ap_due_30d", "ap_due_60d", "ar_due_7d", "ar_due_30d", "ar_due_60d", "overdue_ap",
    "overdue_ar", "net_30d", "ap_open", "ar_open", "vendor_credits", "credit_memos", "unapplied_payments", "ap_net",
    "ar_net", "inflows_91d", "outflows_91d", "weekly_net_burn",
)  # fmt: skip


@pytest.mark.parametrize("form", ["sync", "async"])
def test_digest_numbers_equal_an_independent_computation(company, fresh_digest, form):
    today = date.fromisoformat(fresh_digest["as_of_date"])
    orch = DigestDataOrchestrator(company.reader(), today=today)
    if form == "sync":
        digest = fresh_digest
    else:
        digest = asyncio.run(orch.get_digest_data_async(company.realm_id))
        assert digest["cash_projection"] == fresh_digest["cash_projection"]
    expected = independent_figures(company, today)
    for key in MONEY:
        assert D(digest[key]) == expected[key], key
    assert D(digest["cash_on_hand"]) > 0 and D(digest["ap_due_30d"]) > 0 and D(digest["outflows_91d"]) > 0
    burn = expected["weekly_net_burn"]
    if burn > 0:
        assert D(digest["runway_weeks"]) == (expected["cash_on_hand"] / burn).quantize(D("0.1"))
    else:
        assert digest["runway_weeks"] is None
    # Every part carries provenance; the live read refreshed the data for this digest.
    assert set(digest["provenance"]) >= {"cash_on_hand", "accounts_payable", "accounts_receivable"}
    assert {"bank_flows_Payment", "bank_flows_BillPayment", "bank_flows_Purchase"} <= set(fresh_digest["provenance"])
    assert all(not p["stale"] for p in digest["provenance"].values())
    assert fresh_digest["provenance_summary"]["source"] == "api"
    owed = [D(v["owed"]) for v in digest["top_vendors_owed"]]
    vendors_owing = {
        b["VendorRef"]["value"] for b in company.sandbox_objects("Bill")["active"] if cents(b["Balance"]) > 0
    }
    assert owed == sorted(owed, reverse=True) and len(owed) == min(5, len(vendors_owing)) > 0


def test_ar_net_is_the_sandboxs_own_receivables_net_of_unapplied_payments(company, fresh_digest):
    """Seeded payments that brought more than they apply leave credits: the digest's AR net subtracts
    them, and equals the sandbox's A/R account and the sum of its customers' balances to the cent."""
    payments = company.sandbox_objects("Payment")["active"]
    unapplied = sum((cents(p.get("UnappliedAmt") or 0) for p in payments), D(0))
    assert unapplied > 0 and sum(1 for p in payments if cents(p.get("UnappliedAmt") or 0) > 0) >= 2
    assert D(fresh_digest["unapplied_payments"]) == unapplied
    accounts = company.sandbox_objects("Account")["active"]
    [ar_account] = [a for a in accounts if a["AccountType"] == "Accounts Receivable"]
    customers = company.sandbox_objects("Customer")["active"]  # every customer not deleted
    ar_net = D(fresh_digest["ar_net"])
    assert ar_net == cents(ar_account["CurrentBalance"]) == sum((cents(c["Balance"]) for c in customers), D(0))
    assert ar_net == D(fresh_digest["ar_open"]) - D(fresh_digest["credit_memos"]) - unapplied


def test_runway_method_is_written_beside_the_number_with_its_figures(company, fresh_digest):
    d = fresh_digest
    method = d["runway_method"]
    assert dollars(D(d["cash_on_hand"])) in method
    assert dollars(D(d["outflows_91d"])) in method and dollars(D(d["inflows_91d"])) in method
    if d["runway_weeks"] is not None:
        assert f"= {d['runway_weeks']} weeks" in method and dollars(D(d["weekly_net_burn"])) in method
    else:
        assert method.startswith("Not burning cash")
    sources = {s["entity"]: s for s in d["burn_sources"]}
    assert sum(D(s["inflow"]) for s in sources.values()) == D(d["inflows_91d"])
    assert sum(D(s["outflow"]) for s in sources.values()) == D(d["outflows_91d"])
    # Entities the rules name that this build does not mirror are listed, never silently missing.
    assert all(find_entity(e) is None for e in d["burn_entities_not_mirrored"])


def test_runway_over_time_rebuilds_the_balance_from_the_bank_movements(company, fresh_digest):
    d = fresh_digest
    today = date.fromisoformat(d["as_of_date"])
    expected = independent_figures(company, today)
    history = d["runway_history"]
    assert len(history) == 13 and history[-1]["week_ending"] == d["as_of_date"]
    assert history[-1]["cash"] == d["cash_on_hand"] and history[-1]["weekly_net_burn"] == d["weekly_net_burn"]
    assert history[-1]["runway_weeks"] == d["runway_weeks"]
    moves = expected["_moves"]
    for week in (history[0], history[6]):
        end = date.fromisoformat(week["week_ending"])
        after = sum((a for day, a in moves if end < day <= today), D(0))
        assert D(week["cash"]) == expected["cash_on_hand"] - after
        this_week = [a for day, a in moves if end - timedelta(days=7) < day <= end]
        assert D(week["inflow"]) == sum((a for a in this_week if a > 0), D(0))
        assert D(week["outflow"]) == -sum((a for a in this_week if a < 0), D(0))
        window = [a for day, a in moves if end - timedelta(days=91) < day <= end]
        assert D(week["weekly_net_burn"]) == (-sum(window, D(0)) / 13).quantize(CENT)


def test_the_projection_starts_at_todays_cash_and_spreads_overdue_items(company, fresh_digest):
    d = fresh_digest
    today = date.fromisoformat(d["as_of_date"])
    expected = independent_figures(company, today)
    points = d["cash_projection"]
    assert len(points) == PROJECTION_WEEKS + 1
    assert points[0] == {"week": 0, "week_ending": d["as_of_date"], "inflow": D("0.00"), "outflow": D("0.00"),
                         "cash": d["cash_on_hand"]}  # fmt: skip
    ap, ar = expected["_ap"], expected["_ar"]
    horizon = today + timedelta(days=7 * PROJECTION_WEEKS)
    doubtful_before = today - timedelta(days=DOUBTFUL_AFTER_DAYS)
    ap_paid = sum((b for due, b in ap if due <= horizon), D(0))
    ar_collected = sum((b for due, b in ar if doubtful_before <= due <= horizon), D(0))
    assert sum(D(p["outflow"]) for p in points) == ap_paid
    assert sum(D(p["inflow"]) for p in points) == ar_collected
    assert D(points[-1]["cash"]) == expected["cash_on_hand"] + ar_collected - ap_paid
    assert D(d["doubtful_ar"]) == sum((b for due, b in ar if due < doubtful_before), D(0))
    overdue_ap = sum((b for due, b in ap if due < today), D(0))
    for p in points[1:]:
        end = date.fromisoformat(p["week_ending"])
        first = today if p["week"] == 1 else end - timedelta(days=6)
        on_time = sum((b for due, b in ap if first <= due <= end), D(0))
        share = overdue_ap / OVERDUE_SPREAD_WEEKS if p["week"] <= OVERDUE_SPREAD_WEEKS else D(0)
        assert abs(D(p["outflow"]) - on_time - share) < CENT, p
    low = min(points, key=lambda p: D(p["cash"]))
    assert d["projection_low"] == {"week_ending": low["week_ending"], "cash": low["cash"]}
    below = next((p["week_ending"] for p in points if D(p["cash"]) < 0), None)
    assert d["projected_cash_below_zero"] == below
    assert dollars(overdue_ap) in d["projection_method"]


def test_the_digest_names_the_company(company, fresh_digest):
    from smartsync_pipeline.qbo.credentials import CompanyStore

    if find_entity("CompanyInfo"):
        info = company.sandbox_objects("CompanyInfo")["active"][0]
        assert fresh_digest["company_name"] == info["CompanyName"]
        assert fresh_digest["company_name_source"] == "CompanyInfo"
        return
    assert fresh_digest["company_name"] == company.realm_id and fresh_digest["company_name_source"] == "realm id"
    store = CompanyStore(company.home)
    store.save(replace(store.load(company.realm_id), name="Harbor Street Bakery"))
    digest = DigestDataOrchestrator(company.reader()).get_digest_data(company.realm_id)
    assert digest["company_name"] == "Harbor Street Bakery" and digest["company_name_source"] == "connection"
    assert "Runway digest — Harbor Street Bakery" in to_html(digest)


def test_digest_reports_render_with_the_charts(fresh_digest):
    md = to_markdown(fresh_digest)
    assert "| Cash in bank accounts |" in md and fresh_digest["runway_method"] in md
    html = to_html(fresh_digest)
    for label in ("Projected cash by week", "Trailing burn by week", "Runway by week"):
        assert f"aria-label='{label}'" in html
    assert str(escape(fresh_digest["projection_method"])) in html


def test_digest_rejects_an_unknown_business(company):
    from smartsync_pipeline.smart.errors import UnknownCompanyError

    with pytest.raises(UnknownCompanyError):
        DigestDataOrchestrator(company.reader()).get_digest_data("not-a-company")
    with pytest.raises(ValueError):
        DigestDataOrchestrator(company.reader()).get_digest_data("")


def test_cli_digest_and_bills_due_json_carry_provenance(company, tmp_path: Path):
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root)}
    cli = [sys.executable, "-m", "smartsync_pipeline.cli.main"]
    out = subprocess.run(
        [*cli, "bills-due", "--days", "30", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["provenance"]) == {"source", "as_of", "age_seconds", "stale"}
    assert doc["count"] == len(doc["bills"])
    html = tmp_path / "digest.html"
    out = subprocess.run(
        [*cli, "digest", "--json", "--html", str(html)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    for key in (*MONEY, "runway_weeks", "runway_method", "projection_method", "company_name"):
        assert key in doc
    assert "<svg" in html.read_text()
    text = subprocess.run([*cli, "digest"], env=env, capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "Runway:" in text.stdout and "Projection:" in text.stdout
    bad = subprocess.run([*cli, "bills-due", "--days", "-3"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "-3" in bad.stderr

"""The runway digest equals the same figures computed independently from the sandbox's own data."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal

import pytest

from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
from smartsync_pipeline.orchestrators.digest_report import to_html, to_markdown

D = Decimal


def cents(x) -> Decimal:
    return D(str(x)).quantize(D("0.01"))


def independent_figures(company, today: date) -> dict[str, Decimal]:
    """Plain Python over the sandbox's objects: no smartsync code involved."""
    objs = {
        e: company.sandbox_objects(e)["active"]
        for e in ("Account", "Bill", "Invoice", "Payment", "BillPayment", "Purchase")
    }
    out = {
        "cash_on_hand": sum(
            (
                cents(a["CurrentBalance"])
                for a in objs["Account"]
                if a.get("AccountType") == "Bank" and a.get("Active", True)
            ),
            D("0"),
        )
    }

    def due(docs, horizon):
        limit = today + timedelta(days=horizon)
        return sum(
            (
                cents(d["Balance"])
                for d in docs
                if cents(d["Balance"]) > 0 and date.fromisoformat(d["DueDate"]) <= limit
            ),
            D("0"),
        )

    def overdue(docs):
        return sum(
            (cents(d["Balance"]) for d in docs if cents(d["Balance"]) > 0 and date.fromisoformat(d["DueDate"]) < today),
            D("0"),
        )

    for h in (7, 30, 60):
        out[f"ap_due_{h}d"] = due(objs["Bill"], h)
        out[f"ar_due_{h}d"] = due(objs["Invoice"], h)
    out["overdue_ap"] = overdue(objs["Bill"])
    out["overdue_ar"] = overdue(objs["Invoice"])
    out["net_30d"] = out["ar_due_30d"] - out["ap_due_30d"]
    since = today - timedelta(days=91)

    def flow(docs):
        return sum((cents(d["TotalAmt"]) for d in docs if date.fromisoformat(d["TxnDate"]) >= since), D("0"))

    inflow, outflow = flow(objs["Payment"]), flow(objs["BillPayment"]) + flow(objs["Purchase"])
    out["weekly_net_burn"] = ((outflow - inflow) * 7 / 91).quantize(D("0.01"))
    return out


@pytest.mark.parametrize("form", ["sync", "async"])
def test_digest_numbers_equal_an_independent_computation(connected_company, form):
    company = connected_company
    company.engine().sync()
    company.simulate(80, seed=2)  # some activity the digest must see after its own refresh
    today = date.today()
    orch = DigestDataOrchestrator(company.reader(), today=today)
    if form == "sync":
        digest = orch.get_digest_data(company.realm_id, max_age=0)
    else:
        digest = asyncio.run(orch.get_digest_data_async(company.realm_id, max_age=0))
    expected = independent_figures(company, today)
    for key, value in expected.items():
        assert D(digest[key]) == value, key
    assert D(digest["cash_on_hand"]) > 0 and D(digest["ap_due_30d"]) > 0
    burn = expected["weekly_net_burn"]
    if burn > 0:
        assert D(digest["runway_weeks"]) == (expected["cash_on_hand"] / burn).quantize(D("0.1"))
    else:
        assert digest["runway_weeks"] is None
    # Every part carries provenance; with max_age=0 the data was refreshed for this digest.
    assert set(digest["provenance"]) >= {"cash_on_hand", "accounts_payable", "accounts_receivable"}
    assert all(not p["stale"] for p in digest["provenance"].values())
    assert digest["provenance_summary"]["source"] == "api"
    # Top vendors are really the largest open balances.
    owed = [D(v["owed"]) for v in digest["top_vendors_owed"]]
    assert owed == sorted(owed, reverse=True) and len(owed) == 5


def test_digest_reports_render_with_the_chart(connected_company):
    company = connected_company
    company.engine().sync()
    digest = DigestDataOrchestrator(company.reader()).get_digest_data(company.realm_id)
    md = to_markdown(digest)
    assert "| Cash on hand |" in md and digest["business_id"] in md
    html = to_html(digest)
    assert "<svg" in html and "polyline" in html and html.count("<rect") == 2 * len(digest["cash_projection"])
    assert len(digest["cash_projection"]) == 9


def test_digest_rejects_an_unknown_business(connected_company):
    from smartsync_pipeline.smart.errors import UnknownCompanyError

    with pytest.raises(UnknownCompanyError):
        DigestDataOrchestrator(connected_company.reader()).get_digest_data("not-a-company")
    with pytest.raises(ValueError):
        DigestDataOrchestrator(connected_company.reader()).get_digest_data("")


def test_cli_digest_and_bills_due_json_carry_provenance(connected_company, tmp_path):
    company = connected_company
    company.engine().sync()
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root)}
    cli = [sys.executable, "-m", "smartsync_pipeline.cli.main"]
    out = subprocess.run(
        [*cli, "bills-due", "--days", "30", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["provenance"]) == {"source", "as_of", "age_seconds", "stale"}
    assert doc["provenance"]["source"] == "mirror" and doc["count"] == len(doc["bills"])
    html = tmp_path / "digest.html"
    out = subprocess.run(
        [*cli, "digest", "--json", "--html", str(html)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    for key in (
        "cash_on_hand",
        "ap_due_7d",
        "ap_due_30d",
        "ap_due_60d",
        "ar_due_30d",
        "overdue_ap",
        "overdue_ar",
        "net_30d",
        "runway_weeks",
    ):
        assert key in doc
    assert "<svg" in html.read_text()
    bad = subprocess.run([*cli, "bills-due", "--days", "-3"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "-3" in bad.stderr

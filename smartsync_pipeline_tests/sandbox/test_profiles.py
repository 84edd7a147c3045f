"""Seeded profiles (issue 14.4): a healthy company by default, a struggling one on request, so the
digest tells a believable story either way."""

from __future__ import annotations

import numpy as np
import pytest

from smartsync_pipeline.sandbox.company import DEFAULT_PROFILE, _days, build_company
from smartsync_pipeline.sandbox.config import SandboxConfig
from smartsync_pipeline_tests.sandbox.api_session import SandboxApi

ANCHOR = 1_795_700_000.0


def shape(profile: str) -> dict[str, float]:
    company = build_company(7, "10k", 0, anchor=ANCHOR, profile=profile)
    today = int(_days(np.asarray([company.anchor]))[0])
    bills, invoices, accounts = (company.tables[n] for n in ("Bill", "Invoice", "Account"))
    cash = sum(int(accounts.balances[i - 1]) for i in company.bank_ids)
    overdue_bills = (bills.balances > 0) & (bills.due_days < today)
    overdue_invoices = (invoices.balances > 0) & (invoices.due_days < today)
    days_late = today - invoices.due_days[overdue_invoices]
    old = bills.txn_days < today - 90
    return {
        "cash": cash,
        "overdue_ap": int(bills.balances[overdue_bills].sum()),
        "overdue_bill_share": overdue_bills.mean(),
        "old_bills_paid_share": (bills.balances[old] == 0).mean(),
        "overdue_invoices": int(overdue_invoices.sum()),
        "median_days_late": float(np.median(days_late)),
        "share_late_within_90_days": float((days_late <= 90).mean()),
    }


@pytest.fixture(scope="module")
def profiles() -> dict[str, dict[str, float]]:
    return {name: shape(name) for name in ("healthy", "struggling")}


def test_the_default_company_is_healthy(profiles):
    assert DEFAULT_PROFILE == "healthy"
    healthy = profiles["healthy"]
    assert healthy["overdue_invoices"] > 0 and healthy["overdue_ap"] > 0  # a few overdue, not none
    assert healthy["overdue_ap"] * 3 <= healthy["cash"]  # overdue payables well under cash
    assert healthy["overdue_bill_share"] < 0.08
    assert healthy["old_bills_paid_share"] > 0.97  # old documents were paid
    assert healthy["median_days_late"] < 45  # most overdue customers are weeks late, not a year
    assert healthy["share_late_within_90_days"] > 0.75


def test_the_struggling_company_owes_more_than_it_holds(profiles):
    struggling, healthy = profiles["struggling"], profiles["healthy"]
    assert struggling["overdue_ap"] > struggling["cash"]
    assert struggling["median_days_late"] > 90
    assert struggling["overdue_invoices"] > 3 * healthy["overdue_invoices"]


def test_the_profile_is_a_sandbox_option(sandbox_factory):
    with pytest.raises(ValueError, match="profile must be one of"):
        SandboxConfig(profile="bankrupt")
    healthy = SandboxApi(sandbox_factory(seed=5))
    struggling = SandboxApi(sandbox_factory(seed=5, profile="struggling"))
    query = "SELECT COUNT(*) FROM Bill WHERE Balance > '0'"
    assert struggling.count(query) > 2 * healthy.count(query)

"""Rankings (vendors owed most, customers most overdue) and the digest's top vendors and customers
equal plain Python over the sandbox's own open bills and invoices."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest

from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
from smartsync_pipeline.services import for_business
from smartsync_pipeline_tests.services.conftest import ZERO, OpenDocument


def vendors_owed(bills: list[OpenDocument], today: date, top: int) -> list[dict]:
    """Largest open balance first; ties by vendor id."""
    groups: dict[tuple[str, str], list[OpenDocument]] = defaultdict(list)
    for b in bills:
        groups[(b.party_id, b.party_name)].append(b)
    items = [
        {"vendor_id": vid, "vendor_name": name, "owed": sum((b.balance for b in docs), ZERO),
         "open_bills": len(docs), "overdue_bills": sum(1 for b in docs if b.days_late(today) > 0)}
        for (vid, name), docs in groups.items()
    ]  # fmt: skip
    return sorted(items, key=lambda v: (-v["owed"], v["vendor_id"]))[:top]


def customers_most_overdue(invoices: list[OpenDocument], today: date, top: int) -> list[dict]:
    """Largest overdue balance first; ties: the longest overdue, then customer id."""
    groups: dict[tuple[str, str], list[OpenDocument]] = defaultdict(list)
    for d in invoices:
        if d.days_late(today) > 0:
            groups[(d.party_id, d.party_name)].append(d)
    items = [
        {"customer_id": cid, "customer_name": name, "overdue": sum((d.balance for d in docs), ZERO),
         "overdue_invoices": len(docs), "days_overdue_max": max(d.days_late(today) for d in docs)}
        for (cid, name), docs in groups.items()
    ]  # fmt: skip
    return sorted(items, key=lambda c: (-c["overdue"], -c["days_overdue_max"], c["customer_id"]))[:top]


@pytest.mark.parametrize("top", [1, 5, 1000])
@pytest.mark.parametrize("shift", [0, 60])
def test_top_vendors_owed_equal_an_independent_ranking(reader, company, truth, top, shift) -> None:
    today = date.today() + timedelta(days=shift)
    ranking = for_business(reader, company.realm_id, today=today).vendors.top_vendors_owed(top)
    expected = vendors_owed(truth.bills, today, top)
    assert ranking.items == expected
    assert len(expected) == min(top, len({b.party_id for b in truth.bills}))
    assert ranking.provenance.entity == "Bill" and not ranking.provenance.stale


@pytest.mark.parametrize("top", [1, 5, 1000])
@pytest.mark.parametrize("shift", [0, 60])
def test_most_overdue_customers_equal_an_independent_ranking(reader, company, truth, top, shift) -> None:
    today = date.today() + timedelta(days=shift)
    ranking = for_business(reader, company.realm_id, today=today).customers.most_overdue_customers(top)
    expected = customers_most_overdue(truth.invoices, today, top)
    assert expected, "no overdue invoices: the comparison would prove nothing"
    assert ranking.items == expected


def test_the_digest_top_vendors_and_customers_equal_the_independent_rankings(reader, company, truth) -> None:
    today = date.today()
    digest = DigestDataOrchestrator(reader, today=today).get_digest_data(company.realm_id)
    assert digest["top_vendors_owed"] == vendors_owed(truth.bills, today, 5)
    assert digest["customers_most_overdue"] == customers_most_overdue(truth.invoices, today, 5)
    assert all(type(v["owed"]) is Decimal for v in digest["top_vendors_owed"])


@pytest.mark.parametrize("top", [0, -1, 1001, True, 2.5, "5"])
def test_a_bad_top_is_refused(reader, company, top) -> None:
    services = for_business(reader, company.realm_id)
    with pytest.raises(ValueError, match="top must be"):
        services.vendors.top_vendors_owed(top)
    with pytest.raises(ValueError, match="top must be"):
        services.customers.most_overdue_customers(top)

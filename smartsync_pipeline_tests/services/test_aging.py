"""Aging buckets (open balance by days past due) equal plain Python over the sandbox's own bills and
invoices, on several report dates so every bucket holds money somewhere."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from smartsync_pipeline.services import for_business
from smartsync_pipeline_tests.services.conftest import ZERO, OpenDocument

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
SHIFTS = (0, 45, 120)  # report dates: today and later, so documents age into every bucket


def bucket_of(days_late: int) -> str:
    if days_late <= 0:
        return "current"
    if days_late <= 30:
        return "1-30"
    if days_late <= 60:
        return "31-60"
    if days_late <= 90:
        return "61-90"
    return "90+"


def independent_aging(documents: list[OpenDocument], today: date) -> dict[str, Decimal]:
    out = dict.fromkeys(BUCKETS, ZERO)
    for d in documents:
        out[bucket_of(d.days_late(today))] += d.balance
    return out


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("kind", ["Bill", "Invoice"])
def test_aging_buckets_equal_an_independent_computation(reader, company, truth, kind, shift) -> None:
    today = date.today() + timedelta(days=shift)
    services = for_business(reader, company.realm_id, today=today)
    if kind == "Invoice":
        buckets, docs = services.invoices.get_aging_buckets()
    else:
        buckets, docs = services.bills.aging_buckets()
    expected = independent_aging(truth.documents(kind), today)
    assert buckets == expected
    assert list(buckets) == list(BUCKETS)
    assert all(type(v) is Decimal for v in buckets.values())
    assert sum(buckets.values(), ZERO) == docs.total_balance == sum((d.balance for d in truth.documents(kind)), ZERO)
    assert docs.count == len(truth.documents(kind))


def test_every_bucket_is_exercised(truth) -> None:
    """The report dates above put money in every bucket (else the comparison proves little)."""
    seen = set()
    for shift in SHIFTS:
        today = date.today() + timedelta(days=shift)
        for kind in ("Bill", "Invoice"):
            seen |= {k for k, v in independent_aging(truth.documents(kind), today).items() if v}
    assert seen == set(BUCKETS)


def test_bucket_edges_are_whole_days(reader, company, truth) -> None:
    """A document due exactly 30 days ago is in 1-30, 31 days ago in 31-60, due today is current."""
    doc = truth.invoices[0]
    for late, bucket in ((0, "current"), (1, "1-30"), (30, "1-30"), (31, "31-60"), (90, "61-90"), (91, "90+")):
        today = doc.due + timedelta(days=late)
        buckets, _ = for_business(reader, company.realm_id, today=today).invoices.get_aging_buckets()
        expected = independent_aging(truth.invoices, today)
        assert buckets == expected
        assert bucket_of(doc.days_late(today)) == bucket

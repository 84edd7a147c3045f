"""The awaitable forms (``AsyncView`` and ``get_digest_data_async``) give the same answers as the plain
calls, and those equal plain Python over the sandbox's own data; they run the work off the event loop."""

from __future__ import annotations

import asyncio
import inspect
import threading
from datetime import date, timedelta

import pytest

from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
from smartsync_pipeline.services import AsyncView, for_business
from smartsync_pipeline_tests.services.conftest import ZERO
from smartsync_pipeline_tests.services.test_aging import independent_aging
from smartsync_pipeline_tests.services.test_rankings import customers_most_overdue, vendors_owed


def test_awaited_service_calls_equal_an_independent_computation(reader, company, truth) -> None:
    today = date.today()
    services = for_business(reader, company.realm_id, today=today)

    async def ask():
        return await asyncio.gather(
            AsyncView(services.bills).get_bills_due_in_days(30),
            AsyncView(services.invoices).get_aging_buckets(),
            AsyncView(services.vendors).top_vendors_owed(5),
            AsyncView(services.customers).most_overdue_customers(5),
            AsyncView(services.accounts).get_cash_position(),
        )

    due, (buckets, _), vendors, customers, cash = asyncio.run(ask())
    horizon = today + timedelta(days=30)
    due_truth = [b for b in truth.bills if b.due <= horizon]
    assert due.count == len(due_truth) > 0
    assert due.total_balance == sum((b.balance for b in due_truth), ZERO)
    assert due.overdue_count == sum(1 for b in due_truth if b.days_late(today) > 0)
    assert buckets == independent_aging(truth.invoices, today)
    assert vendors.items == vendors_owed(truth.bills, today, 5)
    assert customers.items == customers_most_overdue(truth.invoices, today, 5)
    assert cash.total == services.accounts.get_cash_position().total


def test_the_async_digest_equals_the_plain_digest(reader, company, truth) -> None:
    today = date.today()
    orchestrator = DigestDataOrchestrator(reader, today=today)
    plain = orchestrator.get_digest_data(company.realm_id)
    awaited = asyncio.run(orchestrator.get_digest_data_async(company.realm_id))
    viewed = asyncio.run(AsyncView(orchestrator).get_digest_data(company.realm_id))
    # Provenance ages differ by the moments the reads ran; every figure is the same.
    figures = {k for k in plain if not k.startswith("provenance")}
    assert {k: awaited[k] for k in figures} == {k: plain[k] for k in figures} == {k: viewed[k] for k in figures}
    assert plain["top_vendors_owed"] == vendors_owed(truth.bills, today, 5)
    assert plain["overdue_ar"] == sum((d.balance for d in truth.invoices if d.days_late(today) > 0), ZERO)


def test_async_view_runs_off_the_event_loop_and_passes_errors_through(reader, company) -> None:
    services = for_business(reader, company.realm_id)
    threads: list[int] = []

    class Probe:
        """Records which thread ran it, like any service method would run."""

        label = "probe"

        def where(self) -> int:
            threads.append(threading.get_ident())
            return threading.get_ident()

    async def main():
        loop_thread = threading.get_ident()
        ran_on = await AsyncView(Probe()).where()
        with pytest.raises(ValueError, match="days"):
            await AsyncView(services.bills).get_bills_due_in_days(-1)
        return loop_thread, ran_on

    loop_thread, ran_on = asyncio.run(main())
    assert ran_on != loop_thread and threads == [ran_on]
    view = AsyncView(Probe())
    assert view.label == "probe"  # plain attributes are not wrapped
    assert inspect.iscoroutinefunction(view.where)

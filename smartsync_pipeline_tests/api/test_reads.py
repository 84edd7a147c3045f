"""The Runway Service as a real process over a real sandbox: answers equal the in-process services,
freshness as HTTP caching, exact money, pages, change feeds, sync status."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime

import pytest

from smartsync_pipeline.api.money import json_value
from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.services import for_business
from smartsync_pipeline_tests.api.conftest import ServedHome

MONEY = re.compile(r"^-?[0-9]+\.[0-9]{2}$")


def money_fields(doc, path=""):
    """Every value of a key that holds money, anywhere in ``doc``."""
    keys = {"total_balance", "overdue_balance", "total_amt", "balance", "total", "owed", "overdue", "inflow",
            "outflow", "cash", "cash_on_hand", "net_30d", "weekly_net_burn", "overdue_ap", "overdue_ar"}  # fmt: skip
    if isinstance(doc, dict):
        for k, v in doc.items():
            if (k in keys or k.startswith(("ap_due_", "ar_due_"))) and not isinstance(v, dict | list) and v is not None:
                yield f"{path}.{k}", v
            yield from money_fields(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from money_fields(v, f"{path}[{i}]")


def test_bills_due_equal_the_in_process_service_with_caching_headers(served: ServedHome) -> None:
    key = served.keys["all"]
    response = served.server.get(f"/businesses/{served.realm}/bills/due?days=30&limit=1000", key)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = for_business(served.reader(), served.realm).bills.get_bills_due_in_days(30)
    assert body["count"] == expected.count > 0
    assert body["total_balance"] == str(expected.total_balance)
    assert body["overdue_balance"] == str(expected.overdue_balance)
    assert [b["id"] for b in body["items"]] == [str(i) for i in expected.rows["id"]]
    assert sum(Decimal(b["balance"]) for b in body["items"]) == Decimal(body["total_balance"])
    bad = [(p, v) for p, v in money_fields(body) if not isinstance(v, str) or not MONEY.match(v)]
    assert not bad, bad
    assert all(re.match(r"^\d{4}-\d{2}-\d{2}$", b["due_date"]) for b in body["items"] if b["due_date"])
    [prov] = body["provenance"]
    assert (prov["entity"], prov["source"], prov["stale"], body["stale_if_error"]) == ("Bill", "mirror", False, False)
    h = response.headers
    age = int(h["Age"])
    assert 0 <= age <= prov["age_seconds"] + 1
    assert h["ETag"].startswith('W/"')
    remaining = int(re.search(r"max-age=(\d+)", h["Cache-Control"]).group(1))
    assert h["Cache-Control"].startswith("private, ") and "stale-if-error=3600" in h["Cache-Control"]
    assert 1800 - age - 1 <= remaining <= 1800 - age
    as_of = datetime.fromisoformat(prov["as_of"].replace("Z", "+00:00"))
    assert parsedate_to_datetime(h["Last-Modified"]) == as_of.replace(microsecond=0)
    assert "Smartsync-Stale" not in h
    assert h["RateLimit-Policy"] == '"per-key";q=100000;w=60'


def test_matching_etag_is_a_304_without_a_body(served: ServedHome) -> None:
    key, path = served.keys["all"], f"/businesses/{served.realm}/cash"
    first = served.server.get(path, key)
    tag = first.headers["ETag"]
    again = served.server.get(path, key, {"If-None-Match": tag})
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["ETag"] == tag and "max-age=" in again.headers["Cache-Control"]
    assert served.server.get(path, key, {"If-None-Match": f'"other", {tag}'}).status_code == 304
    assert served.server.get(path, key, {"If-None-Match": '"other"'}).status_code == 200
    # another representation of the same data has another tag
    html = served.server.get(f"/businesses/{served.realm}/digest", key, {"Accept": "text/html"})
    js = served.server.get(f"/businesses/{served.realm}/digest", key)
    assert html.headers["Content-Type"].startswith("text/html") and js.headers["Content-Type"] == "application/json"
    assert html.headers["ETag"] != js.headers["ETag"]


def test_another_companys_sync_keeps_this_companys_etag(served: ServedHome) -> None:
    """An ETag is built from the business's own snapshot: another company's changes never move it."""
    key, path = served.keys["all"], f"/businesses/{served.realm}/cash"
    tag = served.server.get(path, key).headers["ETag"]
    served.companies[1].simulate(30, seed=11)
    assert served.companies[1].engine().sync(served.other_realm, trigger="manual").changed > 0
    again = served.server.get(path, key, {"If-None-Match": tag})
    assert again.status_code == 304 and again.headers["ETag"] == tag


def test_max_age_0_refreshes_from_qbo_and_a_change_shows(served: ServedHome) -> None:
    key, path = served.keys["all"], f"/businesses/{served.realm}/bills/due?days=3650&limit=1000"
    before = served.server.get(path, key)
    changes = served.companies[0].simulate(60, seed=5)
    assert any(c["entity"] == "Bill" for c in changes), changes
    cached = served.server.get(path, key)  # within the window: the mirror, as it was
    assert cached.json()["provenance"][0]["source"] == "mirror"
    assert cached.headers["ETag"] == before.headers["ETag"]
    live = served.server.get(path, key, {"Cache-Control": "max-age=0"})
    prov = live.json()["provenance"][0]
    assert (prov["source"], prov["stale"]) == ("api", False) and prov["sync_id"]
    assert int(live.headers["Age"]) <= 1
    assert live.headers["ETag"] != before.headers["ETag"]  # the data changed, so did its validator
    expected = for_business(served.reader(), served.realm).bills.get_bills_due_in_days(3650)
    assert live.json()["total_balance"] == str(expected.total_balance)
    # a generous max-age is answered from the refreshed mirror again
    again = served.server.get(path, key, {"Cache-Control": "max-age=600"})
    assert again.json()["provenance"][0]["source"] == "mirror" and again.headers["ETag"] == live.headers["ETag"]


def test_qbo_down_serves_flagged_stale_within_the_bound_and_503_beyond(served: ServedHome) -> None:
    key, path = served.keys["all"], f"/businesses/{served.realm}/invoices/due"
    served.sandbox.control("faults", {"down": True})
    try:
        stale = served.server.get(path, key, {"Cache-Control": "max-age=0"})
        assert stale.status_code == 200, stale.text
        body = stale.json()
        assert (body["stale"], body["stale_if_error"]) == (True, True)
        assert "stale-if-error" in body["provenance"][0]["reason"]
        assert stale.headers["Smartsync-Stale"] == "stale-if-error"
        assert stale.headers["Cache-Control"].startswith("private, max-age=0,")
        # the client's own bound (RFC 5861 request directive) is narrower than the data's age
        refused = served.server.get(path, key, {"Cache-Control": "max-age=0, stale-if-error=0"})
        assert refused.status_code == 503
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) > 0
        assert "stale-if-error=0" in refused.json()["detail"]
        status = served.server.get(f"/businesses/{served.realm}/sync-status", key).json()
        invoice = next(e for e in status["entities"] if e["entity"] == "Invoice")
        # failed, or (503s being retried past stale_answer_after_seconds) still running in the background
        detail = invoice["last_error"]["detail"]
        assert invoice["state"] == "error" and ("QBO refresh failed" in detail or "QBO refresh still running" in detail)
    finally:
        served.sandbox.control("faults", {"down": False})
    # Back up: a refresh started during the outage may still be backing off between its retries, and a read
    # that joins it answers flagged stale after stale_answer_after_seconds; the next reads turn fresh.
    deadline = time.monotonic() + 60
    while (answer := served.server.get(path, key, {"Cache-Control": "max-age=0"}).json())["stale"]:
        assert time.monotonic() < deadline, answer["provenance"]
    assert answer["provenance"][0]["source"] == "api"


def test_pages_follow_the_link_header_and_cover_the_answer_once(served: ServedHome) -> None:
    key = served.keys["all"]
    whole = served.server.get(f"/businesses/{served.realm}/bills/due?days=3650&limit=1000", key).json()
    url, seen, pages = f"/businesses/{served.realm}/bills/due?days=3650&limit=7", [], 0
    while url:
        response = served.server.get(url, key)
        body = response.json()
        seen += [b["id"] for b in body["items"]]
        pages += 1
        link = response.headers.get("Link")
        assert (link is None) == (body["next_cursor"] is None)
        url = link[1 : link.index(">")].removeprefix(served.server.url) if link else None
        assert body["count"] == whole["count"]
    assert seen == [b["id"] for b in whole["items"]]
    assert pages == -(-whole["count"] // 7)
    vendors = served.server.get(f"/businesses/{served.realm}/vendors?limit=5", key).json()
    assert len(vendors["items"]) == 5 and vendors["next_cursor"]
    names = [v["display_name"] for v in vendors["items"]]
    assert names == sorted(names)


def test_change_feeds_of_the_company_and_of_one_object(served: ServedHome) -> None:
    key, realm = served.keys["all"], served.realm
    feed = served.server.get(f"/businesses/{realm}/changes?limit=50", key)
    body = feed.json()
    assert [c["change_id"] for c in body["items"]] == sorted(c["change_id"] for c in body["items"])
    assert len(body["items"]) == 50 and 'rel="next"' in feed.headers["Link"]
    nxt = served.server.get(f"/businesses/{realm}/changes?limit=50&after={body['next_cursor']}", key).json()
    assert nxt["items"][0]["change_id"] > body["items"][-1]["change_id"]
    bills = served.server.get(f"/businesses/{realm}/changes?entity=Bill&limit=1000", key).json()["items"]
    assert bills and {c["entity"] for c in bills} == {"Bill"}
    bill_id = bills[-1]["entity_id"]
    history = served.server.get(f"/businesses/{realm}/changes/Bill/{bill_id}", key).json()["items"]
    assert history and history[0]["op"] == "create" and history[0]["after"]["Id"] == bill_id
    assert {c["entity_id"] for c in history} == {bill_id}
    # each company has its own chain (ids from 1, in its own shard): the other company's changes never
    # appear in this one's feed (its syncs were stamped at other times)
    other = served.server.get(f"/businesses/{served.other_realm}/changes?limit=5", key).json()
    assert [c["change_id"] for c in other["items"]] == [1, 2, 3, 4, 5]
    ours = {(c["change_id"], c["recorded_at"]) for c in body["items"]}
    assert not {(c["change_id"], c["recorded_at"]) for c in other["items"]} & ours


def test_sync_status_per_entity(served: ServedHome) -> None:
    # A sync newer than any error other tests provoked on this shared company: every entity is fresh.
    served.companies[1].engine().sync(served.other_realm, trigger="manual")
    status = served.server.get(f"/businesses/{served.other_realm}/sync-status", served.keys["all"]).json()
    rows = {e["entity"]: e for e in status["entities"]}
    assert len(rows) == len(ENTITIES) and all(e["state"] == "fresh" for e in rows.values()), rows
    bill = rows["Bill"]
    assert bill["window"] == {"warn_seconds": 900.0, "fail_seconds": 1800.0}
    synced = datetime.fromisoformat(bill["last_successful_sync"].replace("Z", "+00:00"))
    assert 0 <= (datetime.now(UTC) - synced).total_seconds() < 3600 and bill["rows_active"] > 0


def test_digest_json_matches_the_orchestrator(served: ServedHome) -> None:
    from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator

    body = served.server.get(f"/businesses/{served.other_realm}/digest", served.keys["all"]).json()
    expected = DigestDataOrchestrator(served.reader()).get_digest_data(served.other_realm)
    for name in (
        "cash_on_hand", "ap_due_30d", "ar_due_60d", "overdue_ap", "weekly_net_burn", "runway_weeks", "ap_net", "ar_net",
        "vendor_credits", "unapplied_payments", "company_name", "runway_method", "projection_method",
    ):  # fmt: skip
        assert body[name] == (None if expected[name] is None else str(expected[name])), name
    assert [w["cash"] for w in body["cash_projection"]] == [str(w["cash"]) for w in expected["cash_projection"]]
    for name in ("runway_history", "burn_sources", "projection_low"):  # Decimals in Python, exact strings in JSON
        assert body[name] == json_value(expected[name]), name
    assert {p["entity"] for p in body["provenance"]} >= {"Account", "Bill", "Invoice", "Payment"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_and_readiness(served: ServedHome, path: str) -> None:
    response = served.server.get(path)
    assert response.status_code == 200 and response.json()["status"] in ("ok", "ready")

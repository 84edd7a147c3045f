"""CDC over real HTTP: what changed since a time, actives before deletes, 30 days, 1000 objects."""

from __future__ import annotations

from smartsync_pipeline.sandbox.qbo_time import iso
from smartsync_pipeline_tests.sandbox.api_session import SandboxApi

DAY = 86_400


def now_epoch(sandbox) -> float:
    return float(sandbox.control("clock", method="GET")["epoch"])


def cdc_lists(response) -> list[dict]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "time" in body
    [entry] = body["CDCResponse"]
    return entry["QueryResponse"]


def test_cdc_returns_changes_with_deletes_after_actives(sandbox_factory):
    sandbox = sandbox_factory(seed=11)
    api = SandboxApi(sandbox)
    since = iso(now_epoch(sandbox) - 1)
    sandbox.control("clock", {"advance_seconds": 5})
    open_bill = api.rows("SELECT * FROM Bill WHERE Balance > '0' MAXRESULTS 1000", "Bill")
    unpaid = [b for b in open_bill if not b.get("LinkedTxn")]
    victim, edited = unpaid[0], unpaid[1]
    assert api.write("Bill", {"Id": victim["Id"], "SyncToken": victim["SyncToken"]}, "delete").status_code == 200
    sandbox.control("clock", {"advance_seconds": 5})
    response = api.write("Bill", {"Id": edited["Id"], "SyncToken": edited["SyncToken"], "sparse": True,
                                  "PrivateNote": "changed"})  # fmt: skip
    assert response.status_code == 200
    purchase = api.rows("SELECT * FROM Purchase MAXRESULTS 1", "Purchase")[0]
    api.write("Purchase", {"Id": purchase["Id"], "SyncToken": purchase["SyncToken"]}, "delete")

    [bills, purchases] = cdc_lists(api.cdc("Bill,Purchase", since))
    objects = bills["Bill"]
    statuses = [o.get("status") for o in objects]
    assert statuses[-1] == "Deleted" and "Deleted" not in statuses[:-1]
    deleted = objects[-1]
    assert deleted["Id"] == victim["Id"]
    assert set(deleted) == {"Id", "MetaData", "status"}
    active_ids = [o["Id"] for o in objects[:-1]]
    assert edited["Id"] in active_ids and victim["Id"] not in active_ids
    assert api.read("Bill", edited["Id"]) in objects
    times = [o["MetaData"]["LastUpdatedTime"] for o in objects[:-1]]
    assert times == sorted(times)
    assert bills["totalCount"] == len(objects) and bills["startPosition"] == 1
    assert [o["Id"] for o in purchases["Purchase"]] == [purchase["Id"]]
    assert purchases["Purchase"][0]["status"] == "Deleted"


def test_cdc_sees_the_seeded_history_of_the_last_days(sandbox):
    api = SandboxApi(sandbox)
    now = now_epoch(sandbox)
    since = now - 20 * DAY
    bills = api.all_objects("Bill")["active"]
    expected = sorted(
        (b["MetaData"]["LastUpdatedTime"], int(b["Id"]))
        for b in bills
        if b["MetaData"]["LastUpdatedTime"] >= iso(since)
    )
    [entry] = cdc_lists(api.cdc("Bill", iso(since)))
    got = [(o["MetaData"]["LastUpdatedTime"], int(o["Id"])) for o in entry.get("Bill", [])]
    assert got == expected and got


def test_cdc_rejects_a_window_older_than_30_days(sandbox):
    api = SandboxApi(sandbox)
    now = now_epoch(sandbox)
    response = api.cdc("Bill", iso(now - 31 * DAY))
    assert response.status_code == 400
    fault = response.json()["Fault"]
    assert fault["type"] == "ValidationFault"
    assert "older than" in fault["Error"][0]["Detail"]
    assert api.cdc("Bill", iso(now - 29 * DAY)).status_code == 200


def test_cdc_rejects_unknown_entities_and_missing_parameters(sandbox):
    api = SandboxApi(sandbox)
    since = iso(now_epoch(sandbox) - DAY)
    assert api.cdc("Bill,Spaceship", since).status_code == 400
    assert api.get("cdc", entities="Bill").status_code == 400
    assert api.cdc("Bill", "yesterday").status_code == 400


def test_cdc_stops_at_1000_objects_in_entity_order(sandbox_factory):
    sandbox = sandbox_factory(scale="medium", seed=5)
    api = SandboxApi(sandbox)
    since = now_epoch(sandbox) - 1
    changes = sandbox.control("simulate", {"operations": 1000, "seed": 9})["changes"]
    changed = {}
    for change in changes:
        changed.setdefault(change["entity"], set()).add(change["id"])
    order = ["Bill", "Invoice", "Account", "Vendor", "Customer", "BillPayment", "Payment", "Purchase"]
    total_changed = sum(len(changed.get(e, ())) for e in order)
    assert total_changed > 1000, "the simulation must change more than 1000 objects"
    lists = cdc_lists(api.cdc(",".join(order), iso(since)))
    counts = [len(next(iter(entry.values()), [])) if entry else 0 for entry in lists]
    assert sum(counts) == 1000
    # Entities are filled in request order: every earlier entity is complete, later ones are cut.
    filled = 0
    for name, entry, count in zip(order, lists, counts, strict=True):
        expected = min(len(changed.get(name, ())), 1000 - filled)
        assert count == expected, name
        if count:
            assert {o["Id"] for o in entry[name]} <= changed[name]
        filled += count

"""The query endpoint over real HTTP, checked against the full object dump as the oracle."""

from __future__ import annotations

import time

import pytest

from smartsync_pipeline_tests.sandbox.api_session import SandboxApi


@pytest.fixture(scope="module")
def api(sandbox):
    return SandboxApi(sandbox)


@pytest.fixture(scope="module")
def bills(api):
    return api.all_objects("Bill")["active"]


def ids(rows):
    return [int(r["Id"]) for r in rows]


def test_select_all_is_id_ordered_and_complete(api, bills):
    rows = api.rows("SELECT * FROM Bill MAXRESULTS 1000", "Bill")
    assert ids(rows) == sorted(ids(bills))
    assert rows == sorted(bills, key=lambda b: int(b["Id"]))


@pytest.mark.parametrize(
    ("op", "check"),
    [
        ("=", lambda a, b: a == b),
        ("<", lambda a, b: a < b),
        (">", lambda a, b: a > b),
        ("<=", lambda a, b: a <= b),
        (">=", lambda a, b: a >= b),
    ],
)
def test_every_comparison_operator_on_amounts(api, bills, op, check):
    pivot = sorted(b["TotalAmt"] for b in bills)[len(bills) // 2]
    expected = sorted(int(b["Id"]) for b in bills if check(b["TotalAmt"], pivot))
    assert expected, "the pivot must select something"
    assert ids(api.rows(f"SELECT * FROM Bill WHERE TotalAmt {op} {pivot} MAXRESULTS 1000", "Bill")) == expected
    # A quoted number means the same.
    assert ids(api.rows(f"SELECT * FROM Bill WHERE TotalAmt {op} '{pivot}' MAXRESULTS 1000", "Bill")) == expected


def test_dates_compare_as_dates(api, bills):
    pivot = sorted(b["DueDate"] for b in bills)[len(bills) // 3]
    expected = sorted(int(b["Id"]) for b in bills if b["DueDate"] < pivot)
    assert ids(api.rows(f"SELECT * FROM Bill WHERE DueDate < '{pivot}' MAXRESULTS 1000", "Bill")) == expected


def test_and_combines_conditions(api, bills):
    vendor = bills[0]["VendorRef"]["value"]
    expected = sorted(int(b["Id"]) for b in bills if b["VendorRef"]["value"] == vendor and b["Balance"] > 0)
    rows = api.rows(f"SELECT * FROM Bill WHERE VendorRef = '{vendor}' AND Balance > '0' MAXRESULTS 1000", "Bill")
    assert ids(rows) == expected


def test_in_on_a_reference_compares_the_ref_value(api, bills):
    wanted = {bills[0]["VendorRef"]["value"], bills[5]["VendorRef"]["value"]}
    expected = sorted(int(b["Id"]) for b in bills if b["VendorRef"]["value"] in wanted)
    text = "SELECT * FROM Bill WHERE VendorRef IN ({}) MAXRESULTS 1000".format(", ".join(f"'{v}'" for v in wanted))
    assert ids(api.rows(text, "Bill")) == expected
    assert ids(api.rows("SELECT * FROM Bill WHERE Id IN ('3', '7', '11')", "Bill")) == [3, 7, 11]


def test_like_with_percent(api):
    vendors = api.all_objects("Vendor")["active"]
    active = [v for v in vendors if v["Active"]]
    prefix = active[0]["DisplayName"].split(" ")[0]
    expected = sorted(int(v["Id"]) for v in active if v["DisplayName"].lower().startswith(prefix.lower()))
    assert ids(api.rows(f"SELECT * FROM Vendor WHERE DisplayName LIKE '{prefix}%'", "Vendor")) == expected
    contains = sorted(int(v["Id"]) for v in active if "supply" in v["DisplayName"].lower())
    assert ids(api.rows("SELECT * FROM Vendor WHERE DisplayName LIKE '%Supply%'", "Vendor")) == contains


def test_nested_metadata_fields_and_the_lowercase_alias(api, bills):
    pivot = sorted(b["MetaData"]["LastUpdatedTime"] for b in bills)[200]
    expected = sorted(int(b["Id"]) for b in bills if b["MetaData"]["LastUpdatedTime"] >= pivot)
    for name in ("MetaData.LastUpdatedTime", "Metadata.LastUpdatedTime"):
        assert ids(api.rows(f"SELECT * FROM Bill WHERE {name} >= '{pivot}' MAXRESULTS 1000", "Bill")) == expected
    created = sorted(b["MetaData"]["CreateTime"] for b in bills)[40]
    expected = sorted(int(b["Id"]) for b in bills if b["MetaData"]["CreateTime"] < created)
    assert (
        ids(api.rows(f"SELECT * FROM Bill WHERE MetaData.CreateTime < '{created}' MAXRESULTS 1000", "Bill")) == expected
    )


def test_base_last_updated_time_grows_with_id(bills):
    times = [b["MetaData"]["LastUpdatedTime"] for b in sorted(bills, key=lambda b: int(b["Id"]))]
    assert times == sorted(times)


def test_orderby_asc_and_desc(api, bills):
    rows = api.rows("SELECT * FROM Bill ORDERBY TotalAmt DESC MAXRESULTS 1000", "Bill")
    assert [r["TotalAmt"] for r in rows] == sorted((b["TotalAmt"] for b in bills), reverse=True)
    rows = api.rows("SELECT * FROM Bill WHERE Balance > '0' ORDERBY DueDate MAXRESULTS 1000", "Bill")
    assert [r["DueDate"] for r in rows] == sorted(b["DueDate"] for b in bills if b["Balance"] > 0)
    vendors = api.rows("SELECT * FROM Vendor ORDERBY DisplayName DESC MAXRESULTS 1000", "Vendor")
    names = [v["DisplayName"].casefold() for v in vendors]
    assert names == sorted(names, reverse=True)


def test_count(api, bills):
    assert api.count("SELECT COUNT(*) FROM Bill") == len(bills)
    assert api.count("select count(*) from Bill where Balance > '0'") == sum(1 for b in bills if b["Balance"] > 0)


def test_startposition_and_maxresults(api, bills):
    all_ids = sorted(ids(bills))
    page = api.query("SELECT * FROM Bill STARTPOSITION 11 MAXRESULTS 7")
    assert ids(page["Bill"]) == all_ids[10:17]
    assert (page["startPosition"], page["maxResults"]) == (11, 7)
    default = api.query("SELECT * FROM Bill")
    assert default["maxResults"] == 100
    capped = api.query("SELECT * FROM Bill MAXRESULTS 5000")
    assert capped["maxResults"] == len(bills) <= 1000
    assert api.query(f"SELECT * FROM Bill STARTPOSITION {len(bills) + 1}") == {}
    filtered = api.query("SELECT * FROM Bill WHERE Balance > '0' STARTPOSITION 3 MAXRESULTS 2")
    assert ids(filtered["Bill"]) == sorted(int(b["Id"]) for b in bills if b["Balance"] > 0)[2:4]


def test_query_by_post_body_and_id_descending(api, bills):
    response = api.http.post(
        f"{api.base}/query",
        params={"minorversion": 75},
        data="SELECT * FROM Bill ORDERBY Id DESC MAXRESULTS 3",
        headers={**api.headers(), "Content-Type": "application/text"},
        timeout=10,
    )
    assert response.status_code == 200
    assert ids(response.json()["QueryResponse"]["Bill"]) == sorted(ids(bills), reverse=True)[:3]


def test_empty_page_shape(api):
    response = api.query_response("SELECT * FROM Bill WHERE TotalAmt < 0")
    assert response.status_code == 200
    body = response.json()
    assert body["QueryResponse"] == {} and "time" in body


def test_name_lists_hide_inactive_rows_unless_asked(api):
    vendors = api.all_objects("Vendor")["active"]
    inactive = [v for v in vendors if not v["Active"]]
    assert inactive, "seeded companies have some inactive vendors"
    assert api.count("SELECT COUNT(*) FROM Vendor") == len(vendors) - len(inactive)
    assert api.count("SELECT COUNT(*) FROM Vendor WHERE Active IN (true, false)") == len(vendors)
    only_inactive = api.rows("SELECT * FROM Vendor WHERE Active = false", "Vendor")
    assert ids(only_inactive) == sorted(int(v["Id"]) for v in inactive)
    # Transactions are not name lists: nothing is hidden.
    assert api.count("SELECT COUNT(*) FROM Bill") == len(api.all_objects("Bill")["active"])


def test_escaped_quote_finds_o_brien(api):
    rows = api.rows(r"SELECT * FROM Vendor WHERE DisplayName = 'O\'Brien'", "Vendor")
    assert [r["DisplayName"] for r in rows] == ["O'Brien"]
    assert api.rows(r"SELECT * FROM Vendor WHERE DisplayName = 'o\'brien'", "Vendor") == rows  # case-insensitive


def test_injection_through_a_quoted_value_finds_nothing(api):
    response = api.query_response(r"SELECT * FROM Vendor WHERE DisplayName = 'x\' OR Id > \'0'")
    assert response.status_code == 200
    assert response.json()["QueryResponse"] == {}
    # The unescaped form is a parse error, not a query that returns every vendor.
    bad = api.query_response("SELECT * FROM Vendor WHERE DisplayName = 'x' OR Id > '0'")
    assert bad.status_code == 400
    assert bad.json()["Fault"]["Error"][0]["code"] == "4000"


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("SELECT * FROM Nope", "Nope"),
        ("SELECT * FROM Bill WHERE Colour = 'red'", "Colour"),
        ("SELECT * FROM Bill ORDERBY Colour", "Colour"),
        ("SELECT * FROM Bill WHERE", "QueryParserError"),
        ("SELECT * FROM Bill WHERE TotalAmt LIKE '1%'", "LIKE"),
        ("SELECT * FROM Bill WHERE TotalAmt > 'lots'", "number"),
    ],
)
def test_bad_queries_are_400_validation_faults(api, text, detail):
    response = api.query_response(text)
    assert response.status_code == 400
    fault = response.json()["Fault"]
    assert fault["type"] == "ValidationFault"
    assert fault["Error"][0]["code"] == "4000"
    assert detail in fault["Error"][0]["Detail"]


def test_paging_all_medium_bills_across_1000_row_pages(sandbox_factory):
    api = SandboxApi(sandbox_factory(scale="medium", seed=3))
    total = api.count("SELECT COUNT(*) FROM Bill")
    assert total > 20_000
    seen: list[int] = []
    start = time.monotonic()
    position = 1
    while True:
        page = api.query(f"SELECT * FROM Bill STARTPOSITION {position} MAXRESULTS 1000")
        rows = page.get("Bill", [])
        if not rows:
            break
        assert page["maxResults"] == len(rows) <= 1000
        seen.extend(ids(rows))
        position += len(rows)
    elapsed = time.monotonic() - start
    assert len(seen) == total
    assert seen == sorted(set(seen))
    assert elapsed < 30, f"paging {total} bills took {elapsed:.1f}s"

"""Stats the client tests rely on: requests by kind, minor versions, the recent queries."""

from __future__ import annotations

import requests

from smartsync_pipeline_tests.sandbox.api_session import SandboxApi


def test_minorversion_is_recorded_and_old_ones_rejected(sandbox_factory):
    sandbox = sandbox_factory(seed=91)
    api = SandboxApi(sandbox)
    sandbox.control("stats/reset")
    assert api.get("query", query="SELECT COUNT(*) FROM Bill").status_code == 200
    assert api.get("query", query="SELECT COUNT(*) FROM Bill", minorversion=80).status_code == 200
    old = api.get("query", query="SELECT COUNT(*) FROM Bill", minorversion=74)
    assert old.status_code == 400
    assert old.json()["Fault"]["type"] == "ValidationFault"
    missing = requests.get(f"{api.base}/query", params={"query": "SELECT COUNT(*) FROM Bill"},
                           headers=api.headers(), timeout=10)  # fmt: skip
    assert missing.status_code == 200
    stats = sandbox.control("stats", method="GET")
    assert stats["minorversions"] == {"75": 1, "80": 1, "74": 1}
    assert stats["missing_minorversion"] == 1


def test_requests_are_counted_by_kind(sandbox_factory):
    sandbox = sandbox_factory(seed=92)
    api = SandboxApi(sandbox)
    sandbox.control("stats/reset")
    api.query("SELECT * FROM Vendor MAXRESULTS 1")
    api.read("Bill", "1")
    api.write("Vendor", {"DisplayName": "Counted Co"})
    api.cdc("Bill", sandbox.control("clock", method="GET")["now"])
    api.refresh(sandbox.info["refresh_token"])
    stats = sandbox.control("stats", method="GET")
    assert stats["requests"] == {"query": 1, "read": 1, "write": 1, "cdc": 1, "token": 1}
    assert stats["recent_queries"] == ["SELECT * FROM Vendor MAXRESULTS 1"]
    assert stats["token_refreshes"] == {"successful": 1, "failed": 0}
    sandbox.control("stats/reset")
    assert sandbox.control("stats", method="GET")["requests_total"] == 0

"""Broken QBO answers through the whole sync path: the sync fails with a typed error and the mirror
(rows, change log, watermarks, published snapshot) is exactly as it was. Then the real QBO again: the
next sync converges, so nothing a broken answer hid was lost."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.apply import InvalidObjectError
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotStore
from smartsync_pipeline.qbo.credentials import CompanyConnection, CompanyStore
from smartsync_pipeline.qbo.errors import QBOError
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.mirror_equality import mirror_differences
from smartsync_pipeline_tests.reliability.garbage_qbo import CannedAnswer, GarbageQBO

TIME = "2026-11-26T10:00:00.000-08:00"
TYPED_ERRORS = (QBOError, InvalidObjectError)


def mirror_state(home: Home) -> str:
    """Everything a sync may change, as one digest: rows, change log, sync state, the published snapshot."""
    h = hashlib.sha256()
    with MirrorDatabase(home).inspect() as con:
        for spec in ENTITIES:
            h.update(repr(con.execute(
                f"SELECT realm_id, id, sync_token, is_deleted, md5(raw) FROM {spec.table} ORDER BY ALL"
            ).fetchall()).encode())  # fmt: skip
        h.update(repr(con.execute("SELECT change_id, row_hash FROM change_log ORDER BY change_id").fetchall()).encode())
        h.update(repr(con.execute("SELECT * FROM sync_state ORDER BY realm_id, entity").fetchall()).encode())
    current = SnapshotStore(home).current()
    h.update(repr((current.generation, current.content_key, current.state) if current else None).encode())
    return h.hexdigest()


def as_json(doc: object) -> CannedAnswer:
    return CannedAnswer(200, json.dumps(doc).encode())


def cdc_of(block: object) -> CannedAnswer:
    return as_json({"CDCResponse": [{"QueryResponse": [block]}], "time": TIME})


BILL_META = {"CreateTime": TIME, "LastUpdatedTime": TIME}

# What the CDC endpoint answers (incremental syncs).
CDC_GARBAGE: dict[str, CannedAnswer] = {
    "html page under 200": CannedAnswer(200, b"<html><body>Service Unavailable</body></html>", "text/html"),
    "truncated json": CannedAnswer(200, b'{"CDCResponse": [{"QueryResponse": [{"Bill": [{"Id": "1"'),
    "empty body": CannedAnswer(200, b""),
    "json null": CannedAnswer(200, b"null"),
    "top-level list": CannedAnswer(200, b"[1, 2, 3]"),
    "binary noise": CannedAnswer(200, bytes(range(256)) * 4, "application/octet-stream"),
    "no CDCResponse": as_json({"time": TIME}),
    "CDCResponse is a string": as_json({"CDCResponse": "nope", "time": TIME}),
    "a CDCResponse entry is a number": as_json({"CDCResponse": [42], "time": TIME}),
    "QueryResponse is a string": as_json({"CDCResponse": [{"QueryResponse": "nope"}], "time": TIME}),
    "an entity block is a list": cdc_of(["Bill"]),
    "entity value is a string": cdc_of({"Bill": "nope"}),
    "entity value is null": cdc_of({"Bill": None}),
    "objects are not objects": cdc_of({"Bill": [1, "x", None]}),
    "object without Id": cdc_of({"Bill": [{"SyncToken": "9", "MetaData": BILL_META}]}),
    "Id is null": cdc_of({"Bill": [{"Id": None, "SyncToken": "9", "MetaData": BILL_META}]}),
    "Id is an object": cdc_of({"Bill": [{"Id": {"value": "1"}, "SyncToken": "9", "MetaData": BILL_META}]}),
    "SyncToken is a number": cdc_of({"Bill": [{"Id": "1", "SyncToken": 9, "MetaData": BILL_META}]}),
    "no time": as_json({"CDCResponse": [{"QueryResponse": [{"Bill": []}]}]}),
    "time is not a time": as_json({"CDCResponse": [{"QueryResponse": [{"Bill": []}]}], "time": "yesterday"}),
    "fault under 200": as_json({"Fault": {"Error": [{"Message": "boom", "code": "10000"}], "type": "SystemFault"}}),
    "xml fault under 200": CannedAnswer(
        200,
        b'<IntuitResponse><Fault type="SystemFault"><Error code="10000"><Message>boom</Message></Error>'
        b"</Fault></IntuitResponse>",
        "application/xml",
    ),
    "5 MB of garbage": CannedAnswer(200, b'{"CDCResponse": "' + b"x" * 5_000_000),
}

# What the query endpoint answers (full syncs): (COUNT answer, SELECT answer).
QUERY_GARBAGE: dict[str, tuple[CannedAnswer, CannedAnswer]] = {
    "count is not a number": (as_json({"QueryResponse": {"totalCount": "lots"}, "time": TIME}), as_json({})),
    "QueryResponse is a string": (as_json({"QueryResponse": "nope", "time": TIME}),) * 2,
    "page value is a string": (
        as_json({"QueryResponse": {"totalCount": 3}, "time": TIME}),
        as_json({"QueryResponse": {"Bill": "nope", "startPosition": 1, "maxResults": 3}, "time": TIME}),
    ),
    "page value is null": (
        as_json({"QueryResponse": {"totalCount": 3}, "time": TIME}),
        as_json({"QueryResponse": {"Bill": None, "startPosition": 1, "maxResults": 3}, "time": TIME}),
    ),
    "page holds non-objects": (
        as_json({"QueryResponse": {"totalCount": 3}, "time": TIME}),
        as_json({"QueryResponse": {"Bill": [1, 2, 3], "startPosition": 1, "maxResults": 3}, "time": TIME}),
    ),
    "two unknown lists": (
        as_json({"QueryResponse": {"totalCount": 2}, "time": TIME}),
        as_json({"QueryResponse": {"Foo": [{"Id": "1"}], "Bar": [{"Id": "2"}]}, "time": TIME}),
    ),
    "html under 200": (CannedAnswer(200, b"<html>maintenance</html>", "text/html"),) * 2,
}


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectedCompany]:
    """A small sandbox company, fully synced, with changes waiting in QBO that no sync has seen yet."""
    sandbox = SandboxProcess.start(scale="small", seed=17)
    try:
        connected = ConnectedCompany(tmp_path_factory.mktemp("garbage_home"), sandbox)
        connected.engine().sync()
        connected.simulate(40, seed=5)
        yield connected
    finally:
        sandbox.stop()


def point_api_at(company: ConnectedCompany, api_base: str) -> None:
    store = CompanyStore(company.home)
    conn = store.load(company.realm_id)
    store.save(
        CompanyConnection(conn.realm_id, api_base, conn.token_url, conn.client_id, conn.client_secret, conn.name)
    )


@pytest.fixture
def garbage(company: ConnectedCompany) -> Iterator[GarbageQBO]:
    with GarbageQBO(lambda endpoint, params: CannedAnswer(500, b"unscripted")) as server:
        point_api_at(company, server.api_base)
        try:
            yield server
        finally:
            point_api_at(company, company.sandbox.api_base)


@pytest.mark.parametrize("case", sorted(CDC_GARBAGE))
def test_a_broken_cdc_answer_fails_the_sync_and_touches_nothing(
    company: ConnectedCompany, garbage: GarbageQBO, case: str
) -> None:
    before = mirror_state(company.home)
    garbage.set_script(lambda endpoint, params: CDC_GARBAGE[case])
    with pytest.raises(TYPED_ERRORS) as raised:
        company.engine().sync(mode="incremental")
    assert garbage.requests["cdc"] >= 1
    assert "Traceback" not in str(raised.value) and "\n" not in str(raised.value).strip()
    assert mirror_state(company.home) == before, f"{case}: the mirror changed"


@pytest.mark.parametrize("case", sorted(QUERY_GARBAGE))
def test_a_broken_query_answer_fails_a_full_sync_and_touches_nothing(
    company: ConnectedCompany, garbage: GarbageQBO, case: str
) -> None:
    before = mirror_state(company.home)
    count_answer, page_answer = QUERY_GARBAGE[case]

    def script(endpoint: str, params: dict[str, str]) -> CannedAnswer:
        return count_answer if "count(" in params.get("query", "").lower() else page_answer

    garbage.set_script(script)
    with pytest.raises(TYPED_ERRORS):
        company.engine().sync(entities=["Bill"], mode="full")
    assert garbage.requests["query"] >= 1
    assert mirror_state(company.home) == before, f"{case}: the mirror changed"


def test_after_the_garbage_the_real_qbo_converges(company: ConnectedCompany) -> None:
    """Runs last in this module: whatever the broken answers did, one sync against QBO makes the mirror
    equal to it (a broken answer that had advanced a watermark would leave changes behind here)."""
    report = company.engine().sync()
    assert report.changed > 0  # the changes simulated at set-up were still waiting
    assert mirror_differences(company) == {}

"""Property-based tests generated from the service's own OpenAPI 3.1 document (schemathesis), against
the real server process and sandbox: every answer must match its documented status, content type,
headers and schema, and nothing may be a 500."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from smartsync_pipeline.api.app import openapi_document
from smartsync_pipeline_tests.api.conftest import ServedHome

pytestmark = pytest.mark.slow


# The document of a server configured like ``served`` (API and webhooks, no OAuth app), built in this
# process so the tests can be generated at collection; the first test checks the server serves it.
DOCUMENT = openapi_document(oauth=False, webhooks=True)
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_document_is_openapi_3_1_and_documents_every_route(served: ServedHome) -> None:
    doc = requests.get(served.server.url + "/openapi.json", timeout=30).json()
    assert doc == DOCUMENT
    assert doc["openapi"].startswith("3.1")
    paths = set(doc["paths"])
    for suffix in ("digest", "bills/due", "bills/overdue", "bills/by-vendor", "invoices/due", "invoices/overdue",
                   "ap-aging", "ar-aging", "cash", "vendors", "customers", "changes", "changes/{entity}/{entity_id}",
                   "sync-status"):  # fmt: skip
        assert f"/businesses/{{business_id}}/{suffix}" in paths
    assert {"/healthz", "/readyz", "/webhooks/qbo"} <= paths
    money = doc["components"]["schemas"]["Bill"]["properties"]["balance"]
    assert any(s.get("pattern") == r"^-?[0-9]+\.[0-9]{2}$" for s in money.get("anyOf", [money]))


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_document(case, served: ServedHome) -> None:
    meta = case.meta
    negative_path = meta is not None and meta.is_negative_at(ParameterLocation.PATH)
    negative_headers = meta is not None and meta.is_negative_at(ParameterLocation.HEADER)
    if case.path_parameters and "business_id" in case.path_parameters and not negative_path:
        case.path_parameters["business_id"] = served.realm  # real data, not only 404s
    # A case made to break the headers (a missing key among them) is sent as generated.
    auth = {} if negative_headers else {"Authorization": f"Bearer {served.keys['all']}"}
    # Opaque cursors and the Cache-Control grammar cannot be written as JSON Schema, so a schema-valid
    # `cursor=000…` is rightly a 400; the table of bad inputs in test_errors_and_keys covers those.
    case.call_and_validate(base_url=served.server.url, headers=auth, excluded_checks=[positive_data_acceptance])

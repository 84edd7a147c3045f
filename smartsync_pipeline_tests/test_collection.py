"""The suite's own collection: with pytest-xdist every test must have a node id of its own, or the tests
sharing one run once and count once (schemathesis's API tests did: 18 tests, 1 run)."""

from __future__ import annotations

import pytest

from smartsync_pipeline.api.app import openapi_document


def test_every_collected_test_has_its_own_node_id(request: pytest.FixtureRequest) -> None:
    ids = [item.nodeid for item in request.session.items]
    assert len(ids) == len(set(ids))
    api_tests = [i for i in ids if "test_every_answer_matches_the_document[" in i]
    operations = sum(len(methods) for methods in openapi_document(oauth=False, webhooks=True)["paths"].values())
    if any("test_openapi_schemathesis" in i for i in ids):  # collected in this run: one test per operation
        assert len(api_tests) == operations, api_tests

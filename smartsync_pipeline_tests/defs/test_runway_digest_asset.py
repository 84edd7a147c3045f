"""The runway_digest asset as a real Dagster run: it depends on every mirror the digest reads (the same
rule tables the digest uses), and its materialization carries the company's name, the runway with its
method, and an HTML report with the three charts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS, qbo_mirrors
from smartsync_pipeline.defs.assets.runway_digest import DIGEST_INPUTS, RUNWAY_DIGEST_KEY, runway_digest
from smartsync_pipeline.entities import find_entity
from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
from smartsync_pipeline.services.bank_flows import leg_entities
from smartsync_pipeline.services.credits import OPEN_CREDITS
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[MirrorSetup]:
    yield from start_mirror_setup(tmp_path, realms=1, ephemeral=True)


def test_the_digest_depends_on_every_mirror_its_rules_read():
    wanted = {"Account", "Bill", "Invoice", "CompanyInfo", *leg_entities(), *(c.entity for c in OPEN_CREDITS)}
    assert set(DIGEST_INPUTS) == {name for name in wanted if find_entity(name)}
    assert {"Payment", "BillPayment", "Purchase"} <= set(DIGEST_INPUTS)
    deps = {key for key in runway_digest.asset_deps[RUNWAY_DIGEST_KEY]}
    assert deps == {MIRROR_KEYS[name] for name in DIGEST_INPUTS}


def test_a_digest_run_records_the_company_the_runway_method_and_the_charts(setup: MirrorSetup):
    realm = setup.realms[0]
    setup.materialize(realm)
    result = dg.materialize(
        [qbo_mirrors, runway_digest], instance=setup.instance, partition_key=realm, resources=setup.resources,
        selection=dg.AssetSelection.assets(RUNWAY_DIGEST_KEY),
    )  # fmt: skip
    assert result.success
    [event] = result.asset_materializations_for_node("reports__runway_digest")
    meta = {k: v.value for k, v in event.metadata.items()}
    digest = DigestDataOrchestrator(setup.companies[0].reader()).get_digest_data(realm)
    assert meta["company"] == digest["company_name"]
    assert meta["runway_method"] == digest["runway_method"]
    assert meta["cash_on_hand"] == float(digest["cash_on_hand"]) and meta["ap_net"] == float(digest["ap_net"])
    assert digest["runway_method"] in meta["digest"]  # the Markdown in the UI states the method too
    html = Path(meta["html_report"]).read_text()
    for label in ("Projected cash by week", "Trailing burn by week", "Runway by week"):
        assert f"aria-label='{label}'" in html

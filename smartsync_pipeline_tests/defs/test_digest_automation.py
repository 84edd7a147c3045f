"""The runway digest refreshes itself (issue 14 item 5): its automation condition requests a company's
digest when one of that company's input mirrors materializes, and only that company's."""

from __future__ import annotations

import dagster as dg

from smartsync_pipeline.definitions import defs
from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.assets.runway_digest import DIGEST_INPUTS, RUNWAY_DIGEST_KEY

A, B = "9130355000000700", "9130355000001700"


def _materialize(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


def _requested(result: dg.EvaluateAutomationConditionsResult) -> set[str]:
    return set(result.get_requested_partitions(RUNWAY_DIGEST_KEY))


def test_the_digest_is_requested_when_a_mirror_of_its_company_materializes() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("realms", [A, B])
        connected = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert _requested(connected) == set()  # nothing synced yet: no digest to make
        for realm in (A, B):
            for name in DIGEST_INPUTS:
                _materialize(instance, MIRROR_KEYS[name], realm)
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=connected.cursor)
        assert _requested(first) == {A, B}  # both companies' inputs arrived: one digest each
        for realm in (A, B):
            _materialize(instance, RUNWAY_DIGEST_KEY, realm)

        quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert _requested(quiet) == set()  # nothing changed since the digests

        _materialize(instance, MIRROR_KEYS["Bill"], B)  # a sync of company B
        after_sync = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=quiet.cursor)
        assert _requested(after_sync) == {B}


def test_the_automation_sensor_runs_by_default_and_targets_only_the_digest() -> None:
    sensor = defs.resolve_sensor_def("runway_digest_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    assert sensor.asset_selection.resolve(graph) == {RUNWAY_DIGEST_KEY}
    assert graph.get(RUNWAY_DIGEST_KEY).automation_condition is not None

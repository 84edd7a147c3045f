"""QBO (the sandbox) restarts between two syncs: the mirror still converges.

The soak found this losing changes: the simulator runs the sandbox clock minutes ahead, a restart put
it back to real time, and every write after the restart carried a LastUpdatedTime before the mirror's
CDC watermark (the server's own earlier answer), so incremental syncs never saw them."""

from __future__ import annotations

from pathlib import Path

from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.mirror_equality import mirror_differences


def test_changes_after_a_sandbox_restart_reach_the_mirror(sandbox_factory, tmp_path: Path) -> None:
    company = ConnectedCompany(tmp_path / "home", sandbox_factory(seed=41, state_file=tmp_path / "state.jsonl"))
    engine = company.engine()
    engine.sync()
    company.simulate(200, seed=1)  # moves the sandbox clock several minutes ahead of real time
    engine.sync()  # the watermark is now the sandbox's (advanced) time
    company.sandbox.restart()
    after_restart = company.simulate(20, seed=2)
    report = engine.sync()
    assert report.changed >= len({(c["entity"], c["id"]) for c in after_restart}) > 0
    assert mirror_differences(company) == {}

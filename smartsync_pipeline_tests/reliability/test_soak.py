"""The chaos soak, twice: the full one (`make soak`, medium realm, SMARTSYNC_SOAK_SECONDS, default 120 s)
and a short one (small realm, 30 s) that runs in every default test run. Same code, smaller numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartsync_pipeline_tests.reliability.chaos_soak import SoakResult, run_soak
from smartsync_pipeline_tests.reliability.soak_config import SoakConfig

FULL = SoakConfig.full()


def _report(result: SoakResult) -> str:
    lines = [result.summary, "", *(f"fault {line}" for line in sorted(result.facts.faults.lines))]
    if result.problems:
        lines += ["", f"{len(result.problems)} problem(s); logs in {result.workdir}:"]
        lines += [f" - {p}" for p in result.problems]
    return "\n".join(lines)


@pytest.mark.soak  # soaks stay out of the default suite (15 minutes on 2 cores); `make soak` runs it
def test_short_chaos_soak_loses_nothing(tmp_path: Path) -> None:
    result = run_soak(SoakConfig.short(), tmp_path / "soak")
    print(_report(result))
    assert result.ok, _report(result)
    facts = result.facts
    # Every kind of trouble really happened, and every kind of work really ran.
    assert set(facts.faults.injected) >= {
        "latency_spike", "throttle_burst", "server_errors_5pct", "token_revoked", "process_killed",
        "sandbox_restarted", "outage", "xml_throttle_burst",
    }  # fmt: skip
    assert facts.syncs.killed >= 1 and facts.syncs.reaped_runs >= 1 and facts.faults.restart_downtimes
    assert facts.syncs.by_kind.get("cli", 0) >= 1 and facts.syncs.by_kind.get("dagster", 0) >= 1
    assert facts.reads.answered >= 10 and facts.changes > 0 and facts.analyst["loops"] > 0
    assert facts.server.auth_failures_401 >= 1 and facts.server.throttled_429 >= 1


@pytest.mark.soak
@pytest.mark.timeout(int(FULL.seconds) + 1800)
def test_full_chaos_soak_loses_nothing(tmp_path: Path) -> None:
    result = run_soak(FULL, tmp_path / "soak")
    print(_report(result))
    assert result.ok, _report(result)
    assert result.facts.syncs.killed >= FULL.fault_rounds and result.facts.syncs.reaped_runs >= 1
    assert len(result.facts.faults.restart_downtimes) == FULL.fault_rounds

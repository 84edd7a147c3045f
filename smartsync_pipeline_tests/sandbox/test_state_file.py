"""``--state-file``: a restarted sandbox has the same company, the same valid tokens, the same port."""

from __future__ import annotations

import os
import stat

import pytest

from smartsync_pipeline.sandbox.process import SandboxProcess, SandboxStartError
from smartsync_pipeline_tests.sandbox.api_session import SandboxApi


def test_restart_preserves_writes_tokens_and_clock(tmp_path):
    state = tmp_path / "sandbox-state.jsonl"
    with SandboxProcess.start(seed=81, state_file=state) as sandbox:
        api = SandboxApi(sandbox)
        port = sandbox.api_base
        sandbox.control("simulate", {"operations": 30, "seed": 2})
        sandbox.control("clock", {"advance_seconds": 7200})
        pair = api.refresh(sandbox.info["refresh_token"]).json()
        access = pair["access_token"]
        api.access_token = access  # the clock moved two hours: the first access token has expired
        created = api.write("Vendor", {"DisplayName": "Survives Restarts Ltd"}).json()["Vendor"]
        before = {e: api.all_objects(e) for e in ("Bill", "Vendor", "BillPayment", "Account", "Purchase")}
        clock_before = sandbox.control("clock", method="GET")["epoch"]

        sandbox.restart()
        assert sandbox.api_base == port
        after = {e: api.all_objects(e) for e in before}
        assert after == before
        assert sandbox.control("clock", method="GET")["epoch"] >= clock_before
        # The refresh token issued before the restart is the valid one, the first one stays dead.
        assert sandbox.info["refresh_token"] == pair["refresh_token"]
        assert api.refresh(sandbox.info["realms"][0]["refresh_token"]).status_code == 200
        restarted = SandboxApi(sandbox, access_token=access)
        assert restarted.read("Vendor", created["Id"])["DisplayName"] == "Survives Restarts Ltd"
        # Ids keep counting from where they were.
        again = restarted.write("Vendor", {"DisplayName": "After The Restart"}).json()["Vendor"]
        assert int(again["Id"]) == int(created["Id"]) + 1
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600


def test_state_file_of_another_company_is_refused(tmp_path):
    state = tmp_path / "state.jsonl"
    SandboxProcess.start(seed=82, state_file=state).stop()
    with pytest.raises(SandboxStartError, match="state file"):
        SandboxProcess.start(seed=83, state_file=state)


def test_restart_without_state_file_starts_fresh(sandbox_factory):
    sandbox = sandbox_factory(seed=84)
    old_refresh = sandbox.info["refresh_token"]
    sandbox.restart()
    assert sandbox.info["refresh_token"] != old_refresh
    assert SandboxApi(sandbox).count("SELECT COUNT(*) FROM Bill") == 250


@pytest.mark.parametrize("crash", [False, True], ids=["clean stop", "SIGKILL"])
def test_a_restart_never_moves_the_clock_behind_the_newest_write(tmp_path, crash: bool) -> None:
    """The simulator moves the clock ahead with each operation (unjournaled); a restart used to put the
    clock back to real time, so new writes were stamped earlier than ones clients had already seen and
    CDC watermarks skipped them (found by the reliability soak)."""
    import signal
    from datetime import datetime

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    state = tmp_path / "state.jsonl"
    with SandboxProcess.start(seed=85, state_file=state) as sandbox:
        changes = sandbox.control("simulate", {"operations": 120, "seed": 3})["changes"]
        newest = max(when(c["last_updated"]) for c in changes)
        clock_before = sandbox.control("clock", method="GET")["epoch"]
        assert clock_before - os.path.getmtime(state) > 60  # the simulation ran the clock minutes ahead
        if crash:
            os.kill(sandbox.pid, signal.SIGKILL)
        sandbox.restart()
        after = sandbox.control("clock", method="GET")
        assert when(after["now"]) >= newest
        if not crash:
            assert after["epoch"] >= clock_before
        later = sandbox.control("simulate", {"operations": 5, "seed": 4})["changes"]
        assert min(when(c["last_updated"]) for c in later) >= newest

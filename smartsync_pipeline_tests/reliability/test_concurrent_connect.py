"""Eight ``smartsync connect`` processes of the same company at once: the connection survives, every
process says what happened, and the Dagster partition is added once without an error. One round by
default (8 processes racing for the token lock and the partition); ``SMARTSYNC_CONNECT_ROUNDS=4`` repeats
it with fresh authorizations (later rounds find the partition registered) for the long version.

Before the fix (issue 15, finding 5) 3 of 26 trials killed the connection: a losing process wrote the
user's already-used refresh token back over the rotated one (its first save happened before it took
the token lock, or on rollback), and one run printed SQLAlchemy's IntegrityError while exiting 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import requests
from click.testing import CliRunner

from smartsync_pipeline.cli.instance_commands import instance as instance_command
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.query import Query

REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 8
ROUNDS = int(os.environ.get("SMARTSYNC_CONNECT_ROUNDS", "1"))


def _fresh_refresh_token(info: dict, sandbox) -> str:
    """A new authorization of the company (authorization code → token pair), as a user would get."""
    code = sandbox.control("auth_code", {"realm_id": info["realm_id"]})["auth_code"]
    answer = requests.post(
        info["token_url"],
        auth=(info["client_id"], info["client_secret"]),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": info.get("redirect_uri", "")},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["refresh_token"]


@pytest.mark.timeout(600)
def test_concurrent_connects_of_one_company_keep_it_connected(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(seed=51)
    info = sandbox.info
    dagster_home = tmp_path / "dagster_home"
    init = CliRunner().invoke(
        instance_command, ["init", "--dagster-home", str(dagster_home)], env={"SMARTSYNC_PG_URL": None}
    )
    assert init.exit_code == 0, init.output
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "SMARTSYNC_LOG_LEVEL": "WARNING"}
    for name in ("SMARTSYNC_DEBUG", "SMARTSYNC_SECRET_KEY", "SMARTSYNC_CLIENT_SECRET", "SMARTSYNC_REFRESH_TOKEN"):
        env.pop(name, None)
    outcomes: list[tuple[int, int, str, str]] = []
    for round_no in range(ROUNDS):
        home = tmp_path / f"home{round_no}"
        line = tmp_path / f"sandbox{round_no}.json"
        line.write_text(json.dumps({**info, "refresh_token": _fresh_refresh_token(info, sandbox)}) + "\n")
        argv = [sys.executable, "-m", "smartsync_pipeline.cli.main", "connect", "--from-sandbox", str(line)]
        run_env = {**env, "SMARTSYNC_HOME": str(home)}
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        procs = [subprocess.Popen(argv, env=run_env, cwd=REPO_ROOT, **pipes) for _ in range(PROCESSES)]
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            outcomes.append((round_no, proc.returncode, out, err))

        # The connection works afterwards: a refresh (revoke the access tokens first) and a query.
        sandbox.control("revoke", {"realm_id": info["realm_id"]})
        store = CompanyStore(Home(home))
        client = QBOClient(store.load(info["realm_id"]), store.tokens(info["realm_id"]), home=Home(home))
        assert client.query(Query.count("Account").include_inactive()).total_count > 0, f"round {round_no}"
        assert client.stats.refreshes == 1

    for round_no, code, out, err in outcomes:
        assert code == 0, f"round {round_no}: exit {code}\n{out}\n{err}"
        assert out.startswith(f"connected company {info['realm_id']}"), out
        assert err == "", f"round {round_no}: stderr\n{err}"
    for round_no in range(ROUNDS):
        # Exactly one process exchanged the user's token; the others found it exchanged and kept the result.
        kept = [out for r, _, out, _ in outcomes if r == round_no and "kept the stored tokens" in out]
        assert len(kept) == PROCESSES - 1, [o for r, _, o, _ in outcomes if r == round_no]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_dynamic_partitions("realms") == [info["realm_id"]]

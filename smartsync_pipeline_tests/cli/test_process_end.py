"""The end of a ``smartsync`` process: teardown skipped only when a command declared it safe, and
then with atexit handlers run, buffered output flushed and the exit code kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from smartsync_pipeline.cli.process_end import only_daemon_threads
from smartsync_pipeline_tests.conftest import ConnectedCompany

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import atexit, os, sys
    from smartsync_pipeline.cli import process_end

    class Teardown:
        def __del__(self, write=os.write):  # runs only while the interpreter tears its modules down
            write(1, b"torn down\\n")

    keep = Teardown()
    atexit.register(lambda: print("atexit ran"))
    print("buffered output")  # a pipe: block-buffered, lost unless flushed before the end
    if sys.argv[1] == "declared":
        process_end.nothing_to_tear_down()
    process_end.end(int(sys.argv[2]))
    """
)


def _run(mode: str, code: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode, str(code)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("code", [0, 3])
def test_a_declared_end_skips_teardown_but_runs_atexit_and_flushes(code: int) -> None:
    done = _run("declared", code)
    assert done.returncode == code
    assert done.stdout.splitlines() == ["buffered output", "atexit ran"]
    assert done.stderr == ""


def test_an_undeclared_end_is_the_ordinary_one() -> None:
    done = _run("undeclared", 3)
    assert done.returncode == 3
    assert done.stdout.splitlines() == ["buffered output", "atexit ran", "torn down"]


@pytest.mark.parametrize("mode", ["declared", "undeclared"])
def test_output_a_gone_reader_cannot_take_ends_the_ordinary_way(mode: str) -> None:
    """`smartsync sync --json | head` where head left before the report was flushed: Python's own end
    says so and exits 120; a skipped teardown must not turn that into a silent 0."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout block-buffered
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, mode, "0"], stdout=write, stderr=subprocess.PIPE, text=True, env=env,
            timeout=60,
        )  # fmt: skip
    finally:
        os.close(write)
    assert done.returncode == 120
    assert "BrokenPipeError" in done.stderr


def test_a_live_non_daemon_thread_keeps_the_ordinary_end() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        assert not only_daemon_threads()
    finally:
        release.set()
        worker.join()
    assert only_daemon_threads()


TEARDOWN_WITNESS = textwrap.dedent(
    """
    import os

    class _Witness:
        # runs only while the interpreter tears its modules down (builtins may be gone by then)
        def __del__(self, path=os.environ.get("TEARDOWN_WITNESS"), write=os.write, open_=os.open, os_=os):
            if path:
                write(open_(path, os_.O_WRONLY | os_.O_CREAT, 0o600), b"torn down")

    _witness = _Witness()
    """
)


def test_a_finished_sync_ends_without_teardown_and_a_refused_one_the_ordinary_way(
    connected_company: ConnectedCompany, tmp_path: Path
) -> None:
    """`smartsync sync` as its own process: its whole report on stdout, exit 0, no teardown; a
    refused command (an unknown entity) still ends the ordinary way with its exit code."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(TEARDOWN_WITNESS)
    witness = tmp_path / "torn-down"
    env = {
        **os.environ,
        "SMARTSYNC_HOME": str(connected_company.home.root),
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "TEARDOWN_WITNESS": str(witness),
    }
    argv = [sys.executable, "-m", "smartsync_pipeline.cli.main", "sync", "--json"]
    done = subprocess.run([*argv, "--entity", "Term"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["entities"]["Term"]["created"] == len(connected_company.sandbox_objects("Term")["active"])
    assert not witness.exists()

    refused = subprocess.run([*argv, "--entity", "NoSuchThing"], env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1, refused.stderr
    assert "NoSuchThing" in refused.stderr
    assert witness.read_text() == "torn down"

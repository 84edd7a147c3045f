"""Importing the package sets the allocator policy a threaded backfill needs (process_memory.py),
unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = "import smartsync_pipeline, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def backend(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_pyarrow_uses_the_system_allocator_after_import() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert backend(env) == "system"


def test_a_users_choice_of_arrow_pool_wins() -> None:
    assert backend({**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}) == "mimalloc"


THREADS = "import os{first}, pyarrow; print(len(os.listdir('/proc/self/task')))"


def threads_after_pyarrow(env: dict[str, str], package_first: bool) -> int:
    probe = THREADS.format(first=", smartsync_pipeline" if package_first else "")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_numpys_blas_threads_are_not_started() -> None:
    """pyarrow imports numpy, whose OpenBLAS starts a spinning thread per core unless told not to."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    with_package, without = threads_after_pyarrow(env, True), threads_after_pyarrow(env, False)
    assert with_package < without, (with_package, without)
    assert threads_after_pyarrow({**env, "OPENBLAS_NUM_THREADS": "2"}, True) > with_package  # the user's wins

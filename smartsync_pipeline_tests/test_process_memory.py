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

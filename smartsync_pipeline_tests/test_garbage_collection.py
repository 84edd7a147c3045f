"""The young-generation threshold is raised while a backfill pages, shared by overlapping backfills,
and restored exactly when the last one ends (even when it fails)."""

from __future__ import annotations

import gc

import pytest

from smartsync_pipeline.garbage_collection import YOUNG_THRESHOLD, fewer_collections


def test_overlapping_blocks_share_the_raised_threshold_and_the_last_restores_it() -> None:
    before = gc.get_threshold()
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    assert gc.get_threshold() == (max(YOUNG_THRESHOLD, before[0]), *before[1:])
    second.__enter__()
    first.__exit__(None, None, None)  # not nested: the first to start ends first
    assert gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_a_failing_block_restores_the_threshold() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold()[0] >= YOUNG_THRESHOLD
        raise RuntimeError("page failed")
    assert gc.get_threshold() == before

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smartsync_pipeline_tests.real_services import postgres_database


@pytest.fixture(scope="module")
def coordination_db() -> Iterator[str]:
    """One fresh PostgreSQL database for the module's coordination tests."""
    with postgres_database() as url:
        yield url

"""``SmartReaderResource``: the SmartReader as a Dagster resource, for the definitions only.

The reader itself (smart/reader.py) is a plain class that imports no Dagster, so the services, the CLI
and the HTTP API read without loading it; this thin factory gives assets the same object, configured
from the launchpad (see ARCHITECTURE.md).
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from smartsync_pipeline.smart.reader import SmartReader


class SmartReaderResource(dg.ConfigurableResource):
    """The configuration of a SmartReader. ``build()`` makes one; the asset that uses it closes it
    (no teardown hook: a resource with one must be opened as a context manager by every sensor test)."""

    smartsync_home: str = Field(
        default="",
        description="SMARTSYNC_HOME of the mirror; empty means the SMARTSYNC_HOME environment variable "
        "(or ./.smartsync) of the process that runs the code",
    )
    stale_if_error_seconds: float = Field(
        default=6 * 3600.0,
        ge=0,
        description="when QBO fails, serve mirror data (flagged stale) if it is at most this old",
    )
    stale_while_revalidate: bool = Field(
        default=False, description="answer stale data at once (flagged) and refresh in the background"
    )
    refresh_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="longest wait for another process's refresh or sync of the same company; then "
        "stale-if-error decides",
    )
    refresh_throttle_seconds: float = Field(
        default=15.0,
        ge=0,
        description="longest wait out of QBO throttling (429) in all during an on-demand refresh call",
    )
    stale_answer_after_seconds: float = Field(
        default=3.0,
        ge=0,
        description="with mirror data inside the stale-if-error bound, the longest a read waits for its "
        "refresh (or another process's sync) before answering that data flagged stale",
    )
    record_in_dagster: bool = Field(
        default=True, description="record on-demand refreshes as materializations when DAGSTER_HOME is set"
    )

    def build(self) -> SmartReader:
        """A new reader with this configuration; the caller owns it (``with resource.build() as reader``)."""
        return SmartReader(
            self.smartsync_home or None,
            stale_if_error_seconds=self.stale_if_error_seconds,
            stale_while_revalidate=self.stale_while_revalidate,
            refresh_wait_seconds=self.refresh_wait_seconds,
            refresh_throttle_seconds=self.refresh_throttle_seconds,
            stale_answer_after_seconds=self.stale_answer_after_seconds,
            record_in_dagster=self.record_in_dagster,
        )

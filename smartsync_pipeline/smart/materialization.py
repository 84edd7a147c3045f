"""How a sync shows up in Dagster: the metadata of one asset partition's materialization, and the
trail that records syncs run outside Dagster (on-demand refreshes, the CLI) in the instance.

Used by the mirror assets (scheduled, sensor and webhook runs), by the SmartReader when an on-demand
refresh is recorded and by ``smartsync sync``, so the UI shows every sync the same way whoever ran it.
Dagster is imported lazily, only when something is recorded: the read path itself never loads it
(see ARCHITECTURE.md, "The read path without Dagster").
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from smartsync_pipeline.entities import entity
from smartsync_pipeline.sync.report import SyncReport

log = logging.getLogger("smartsync.smart")


def materialization_metadata(report: SyncReport, entity_name: str, requested_mode: str) -> dict[str, Any]:
    """What one entity's materialization records: counts, cost, watermarks and the chain position
    (``dagster.MetadataValue`` values)."""
    import dagster as dg

    def timestamp(value: datetime | None) -> Any:
        return dg.MetadataValue.timestamp(value) if value is not None else dg.MetadataValue.text("never")

    def optional_int(value: int | None) -> Any:
        return dg.MetadataValue.int(value) if value is not None else dg.MetadataValue.text("none")

    changed_ids_schema = dg.TableSchema(
        columns=[dg.TableColumn("op", "string"), dg.TableColumn("id", "string", description="QBO Id")]
    )
    result = report.entities[entity_name]
    return {
        "realm": dg.MetadataValue.text(report.realm_id),
        "mode": dg.MetadataValue.text(result.mode),
        "requested_mode": dg.MetadataValue.text(requested_mode),
        "trigger": dg.MetadataValue.text(report.trigger),
        "created": dg.MetadataValue.int(result.created),
        "updated": dg.MetadataValue.int(result.updated),
        "deleted": dg.MetadataValue.int(result.deleted),
        "unchanged": dg.MetadataValue.int(result.unchanged),
        "fetched": dg.MetadataValue.int(result.fetched),
        "api_calls": dg.MetadataValue.int(report.api_calls),
        "bytes_received": dg.MetadataValue.int(report.bytes_received),
        "watermark_before": timestamp(result.watermark_before),
        "watermark_after": timestamp(result.watermark_after),
        "change_id_first": optional_int(report.change_id_first),
        "change_id_last": optional_int(report.change_id_last),
        "chain_head_hash": dg.MetadataValue.text(report.chain_head_hash),
        "rows_active": dg.MetadataValue.int(result.rows_active),
        "rows_deleted": dg.MetadataValue.int(result.rows_deleted),
        "dagster/row_count": dg.MetadataValue.int(result.rows_active),
        "duration_seconds": dg.MetadataValue.float(round(report.duration_seconds, 3)),
        "snapshot_generation": optional_int(report.snapshot_generation),
        "fallback_reason": dg.MetadataValue.text(result.fallback_reason or "-"),
        "sync_id": dg.MetadataValue.text(report.sync_id),
        **{f"{phase}_seconds": dg.MetadataValue.float(round(secs, 3)) for phase, secs in report.timings.items()},
        "changed_ids": dg.MetadataValue.table(
            [dg.TableRecord({"op": op, "id": qid}) for op, qid in result.changed_ids],
            schema=changed_ids_schema,
        ),
    }


class DagsterTrail:
    """Records syncs that ran outside a Dagster run as runless materializations of the synced mirror
    assets' company partition, when an instance is configured (``DAGSTER_HOME`` set). One instance is
    opened on first use and kept until ``close()``.

    With ``background=True`` (the smart reader's trail) ``record_quietly`` builds the events at once
    and one writer thread stores them, so a read does not wait for Dagster's storage: with the default
    SQLite storage each event costs two new database engines and two committed transactions, most of
    a stale read's own time before (ARCHITECTURE.md, "Stale reads"). At most ``max_pending`` events
    wait (then the caller waits for room); ``flush()`` waits until every queued event is stored;
    ``close()`` and the process's exit flush (bounded) before letting go."""

    def __init__(self, *, background: bool = False, max_pending: int = 1000) -> None:
        self._instance: Any = None
        self._lock = threading.Lock()
        self.background = background
        self.max_pending = max_pending
        self._pending: deque[Any] = deque()
        self._unfinished = 0  # queued or being written
        self._changed = threading.Condition(threading.Lock())
        self._writer: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopping = False
        self.written = 0  # events stored by the writer thread (tests, benches)
        if background:
            _background_trails.add(self)

    @staticmethod
    def configured() -> bool:
        return bool(os.environ.get("DAGSTER_HOME"))

    def _get_instance(self) -> Any:
        import dagster as dg

        with self._lock:
            if self._instance is None:
                self._instance = dg.DagsterInstance.get()
            return self._instance

    def _events(self, report: SyncReport, entities: Iterable[str] | None, requested_mode: str) -> list[Any]:
        import dagster as dg

        names = [n for n in (report.entities if entities is None else entities) if n in report.entities]
        return [
            dg.AssetMaterialization(
                asset_key=dg.AssetKey(["qbo", entity(name).table]),
                partition=report.realm_id,
                metadata=materialization_metadata(report, name, requested_mode),
                tags={"smartsync/trigger": report.trigger},
            )
            for name in names
        ]

    def record(self, report: SyncReport, entities: Iterable[str] | None = None, *, requested_mode: str = "auto") -> int:
        """Record ``entities`` (default: every entity the sync covered) now; returns how many were
        recorded. Raises what Dagster raises: callers that must not fail for the trail catch it."""
        if not self.configured():
            return 0
        events = self._events(report, entities, requested_mode)
        instance = self._get_instance()
        for event in events:
            instance.report_runless_asset_event(event)
        return len(events)

    def record_quietly(self, report: SyncReport, entities: Iterable[str] | None = None, **kwargs: Any) -> int:
        """``record`` (queued for the writer thread when ``background``), logging instead of raising:
        the sync itself succeeded whatever Dagster says."""
        try:
            if self.background and self.configured():
                return self._enqueue(self._events(report, entities, kwargs.get("requested_mode", "auto")))
            return self.record(report, entities, **kwargs)
        except Exception as exc:
            log.warning("could not record the %s sync in Dagster: %s", report.trigger, exc)
            return 0

    # -- the background writer -------------------------------------------------------------------

    def _enqueue(self, events: list[Any]) -> int:
        with self._changed:
            if self._pid != os.getpid():  # a forked child: the parent's thread and instance are not ours
                self._pid, self._writer, self._instance = os.getpid(), None, None
                self._pending.clear()
                self._unfinished = 0
            if self._writer is None or not self._writer.is_alive():
                self._stopping = False
                self._writer = threading.Thread(target=self._write_pending, name="dagster-trail", daemon=True)
                self._writer.start()
            for event in events:
                while len(self._pending) >= self.max_pending:  # back-pressure: memory stays bounded
                    self._changed.wait()
                self._pending.append(event)
                self._unfinished += 1
            self._changed.notify_all()
        return len(events)

    def _write_pending(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._stopping:
                    self._changed.wait()
                if not self._pending:
                    return
                event = self._pending.popleft()
                self._changed.notify_all()
            try:
                self._get_instance().report_runless_asset_event(event)
                self.written += 1
            except Exception as exc:
                log.warning("could not record an on-demand refresh in Dagster: %s", exc)
            finally:
                with self._changed:
                    self._unfinished -= 1
                    self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event is stored (at most ``timeout`` seconds); True when none is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._unfinished and self._pid == os.getpid():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Store what is queued (bounded by ``timeout``), stop the writer and dispose of the instance."""
        if not self.flush(timeout):
            log.warning("gave up recording %d on-demand refreshes in Dagster after %.0f s", self._unfinished, timeout)
        with self._changed:
            self._stopping = True
            writer, self._writer = self._writer, None
            self._changed.notify_all()
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout=5.0)
        with self._lock:
            instance, self._instance = self._instance, None
        if instance is not None:
            instance.dispose()


_background_trails: weakref.WeakSet[DagsterTrail] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """A process that ends without closing its reader still records what it queued (bounded)."""
    for trail in list(_background_trails):
        trail.flush(timeout=10.0)

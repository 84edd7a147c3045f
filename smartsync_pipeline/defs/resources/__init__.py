"""Dagster resources. ``RESOURCES`` is what ``definitions.py`` binds; add new resources here."""

from __future__ import annotations

from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.resources.smart_reader import SmartReaderResource
from smartsync_pipeline.smart.reader import SmartReader

MIRROR_SYNC = "mirror_sync"
SMART_READER = "smart_reader"

RESOURCES: dict[str, object] = {MIRROR_SYNC: MirrorSyncResource(), SMART_READER: SmartReaderResource()}

__all__ = ["MIRROR_SYNC", "RESOURCES", "SMART_READER", "MirrorSyncResource", "SmartReader", "SmartReaderResource"]

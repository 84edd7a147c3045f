"""CompanyService: what the company is called, for titles people read."""

from __future__ import annotations

import json
from dataclasses import dataclass

from smartsync_pipeline.smart.sync_service import Provenance, QBOSyncService, SmartReadError


@dataclass(frozen=True)
class CompanyName:
    name: str
    source: str  # "CompanyInfo" (the mirror), "connection" (given at connect) or "realm id"
    provenance: Provenance | None = None


class CompanyService:
    def __init__(self, qbo_sync: QBOSyncService) -> None:
        self.qbo_sync = qbo_sync

    def company_name(self, *, max_age: float | None = None) -> CompanyName:
        """QBO's CompanyInfo name when it is mirrored, else the name stored at connect, else the realm id."""
        q = self.qbo_sync
        if q.mirrors("CompanyInfo"):
            try:
                result = q.get_objects("CompanyInfo", max_age=max_age)
            except SmartReadError:
                result = None
            if result is not None:
                for raw in result.rows["raw"] if len(result.rows) else []:
                    obj = json.loads(raw)
                    name = str(obj.get("CompanyName") or obj.get("LegalName") or "").strip()
                    if name:
                        return CompanyName(name, "CompanyInfo", result.provenance)
        stored = q.connection_name().strip()
        if stored:
            return CompanyName(stored, "connection")
        return CompanyName(q.realm_id, "realm id")

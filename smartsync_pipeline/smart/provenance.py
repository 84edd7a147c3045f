"""Where an answer came from, and how old it is: attached to every read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Source = Literal["mirror", "api"]


@dataclass(frozen=True)
class Provenance:
    """``source`` is "api" when this read refreshed the mirror from QBO first, else "mirror".
    ``stale`` is True whenever the data is older than the caller's ``max_age`` (only possible when QBO
    failed and stale-if-error allowed it, or under stale-while-revalidate); ``reason`` says why."""

    source: Source
    realm_id: str
    entity: str
    as_of: datetime | None  # when the mirror last asked QBO for this entity
    age_seconds: float | None
    max_age_seconds: float
    stale: bool
    snapshot_generation: int | None = None
    sync_id: str | None = None  # the refresh this read triggered or waited for
    changes: int | None = None  # rows that refresh changed
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat() if self.as_of else None
        out["age_seconds"] = None if self.age_seconds is None else round(self.age_seconds, 3)
        if not out["extra"]:
            del out["extra"]
        return out

    def public(self) -> dict[str, Any]:
        """The short form the CLI's --json promises: source, as_of, age_seconds, stale."""
        d = self.as_dict()
        return {k: d[k] for k in ("source", "as_of", "age_seconds", "stale")}

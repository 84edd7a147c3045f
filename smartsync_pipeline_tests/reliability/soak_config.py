"""How big and how long a chaos soak is: one dataclass, two presets (the full soak and the short one
that runs in the default test run). Both run exactly the same code."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

SOAK_SECONDS_ENV = "SMARTSYNC_SOAK_SECONDS"
DEFAULT_SOAK_SECONDS = 120.0

# (weight, max_age) mix of the readers: live, 5 s, the entity's default window, a week.
MAX_AGE_MIX: tuple[tuple[float, float | None], ...] = ((0.15, 0.0), (0.35, 5.0), (0.30, None), (0.20, 604_800.0))


@dataclass(frozen=True)
class SoakConfig:
    """Sizes of one soak. ``seconds`` is the chaos phase only (set-up and the final audit come on top)."""

    seconds: float
    scale: str = "medium"
    seed: int = 7
    readers: int = 8
    reader_pause_seconds: float = 0.25  # a reader's think time between two reads
    simulate_operations: int = 4  # business operations per simulate call
    simulate_interval_seconds: float = 0.5
    sync_kinds: tuple[str, ...] = ("dagster", "cli")  # the sync runner cycles through these
    fault_rounds: int = 2  # how often the revoke / kill / restart / throttle sequence repeats
    webhook_duplicate_rate: float = 0.2
    sandbox_start_seconds: float = 600.0

    @classmethod
    def full(cls, seconds: float | None = None) -> SoakConfig:
        """The soak `make soak` runs: a medium realm, 8 readers, ``SMARTSYNC_SOAK_SECONDS`` (default 120)."""
        if seconds is None:
            raw = os.environ.get(SOAK_SECONDS_ENV, "").strip()
            seconds = float(raw) if raw else DEFAULT_SOAK_SECONDS
        if seconds < 20:
            raise ValueError(f"{SOAK_SECONDS_ENV} must be at least 20 seconds, got {seconds}")
        return cls(seconds=seconds)

    @classmethod
    def short(cls) -> SoakConfig:
        """The default-run version: a small realm, fewer readers, one round of every fault."""
        return cls(
            seconds=30.0,
            scale="small",
            readers=4,
            reader_pause_seconds=0.3,
            simulate_operations=3,
            sync_kinds=("cli", "dagster"),
            fault_rounds=1,
            sandbox_start_seconds=120.0,
        )

    def with_seconds(self, seconds: float) -> SoakConfig:
        return replace(self, seconds=seconds)

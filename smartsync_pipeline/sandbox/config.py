"""The sandbox's start-up options, shared by ``python -m smartsync_pipeline.sandbox serve`` and
``smartsync sandbox serve``."""

from __future__ import annotations

from dataclasses import dataclass

from smartsync_pipeline.sandbox.company import DEFAULT_PROFILE, PROFILES, SCALES


@dataclass(frozen=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 7
    scale: str = "small"
    profile: str = DEFAULT_PROFILE  # how the seeded companies run their books: healthy | struggling
    realms: int = 1
    state_file: str | None = None
    per_window: int = 500
    window_seconds: float = 60.0
    max_concurrent: int = 10
    rotation_grace_seconds: float = 0.0
    rotation_interval_seconds: float = 0.0  # Intuit: 86400 (a refresh token keeps its value for 24 h)
    start_time: str | None = None  # ISO date-time for the clock and the seeded history (default: now)
    freeze: bool = False
    access_log: bool = False
    parent_pid: int | None = None  # exit when this process is gone (no orphans after a killed test run)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {sorted(SCALES)}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}")
        if not 1 <= self.realms <= 50:
            raise ValueError("realms must be between 1 and 50")
        if self.per_window < 1 or self.window_seconds <= 0 or self.max_concurrent < 1:
            raise ValueError("limits must be positive")

"""What a long-lived process holds: open descriptors, threads, resident memory (from /proc/self)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Footprint:
    fds: int
    threads: int
    rss_mb: float

    @classmethod
    def now(cls) -> Footprint:
        rss_kb = 0
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
        return cls(len(os.listdir("/proc/self/fd")), threading.active_count(), rss_kb / 1024)

    def growth_since(self, before: Footprint) -> Footprint:
        return Footprint(self.fds - before.fds, self.threads - before.threads, round(self.rss_mb - before.rss_mb, 1))

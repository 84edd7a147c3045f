"""When each fault of a soak happens, and the thread that makes it happen.

The schedule is plain data computed from the soak length, so a 30-second run and a 2-hour run inject
the same kinds of trouble in the same order. Every fault is switched off again by the schedule itself;
at 90 % of the run everything is calm again so the last stretch shows recovery.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from smartsync_pipeline_tests.reliability.chaos_sandbox import DEFAULT_LIMITS, ChaosSandbox

CALM_AT = 0.90  # fraction of the run after which no fault is active


@dataclass(frozen=True)
class FaultEvent:
    """One action at ``at`` seconds into the chaos phase. ``kind`` names the fault; ``action`` is
    ``start``/``stop`` for faults that last, ``once`` for instant ones."""

    at: float
    kind: str
    action: str = "once"


# Offsets inside one round (fractions of the round) and, for lasting faults, their length.
_ROUND: tuple[tuple[float, str, float], ...] = (
    (0.00, "latency_spike", 0.12),
    (0.15, "throttle_burst", 0.15),
    (0.35, "token_revoked", 0.0),
    (0.45, "process_killed", 0.0),
    (0.60, "sandbox_restarted", 0.0),
    (0.72, "outage", 0.08),
    (0.85, "xml_throttle_burst", 0.10),
)


def build_schedule(seconds: float, rounds: int) -> list[FaultEvent]:
    """Every fault of a run of ``seconds``: ``rounds`` rounds of the sequence above between 5 % and 85 %
    of the run, plus 5 % server errors from 10 % to 88 %."""
    events = [
        FaultEvent(0.10 * seconds, "server_errors_5pct", "start"),
        FaultEvent(0.88 * seconds, "server_errors_5pct", "stop"),
    ]
    span = 0.80 * seconds / rounds
    for r in range(rounds):
        base = 0.05 * seconds + r * span
        for offset, kind, length in _ROUND:
            if length:
                events.append(FaultEvent(base + offset * span, kind, "start"))
                events.append(FaultEvent(base + (offset + length) * span, kind, "stop"))
            else:
                events.append(FaultEvent(base + offset * span, kind))
    events.append(FaultEvent(CALM_AT * seconds, "calm"))
    return sorted(events, key=lambda e: e.at)


@dataclass
class FaultLog:
    """What was injected: counts by kind and a time-stamped line per action."""

    injected: Counter = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)
    restart_downtimes: list[float] = field(default_factory=list)
    kills_missed: int = 0


class FaultRunner(threading.Thread):
    """Applies a schedule to the sandbox (and, for kills, to the sync runner) in real time."""

    def __init__(
        self,
        sandbox: ChaosSandbox,
        schedule: list[FaultEvent],
        kill_busy_sync: Callable[[float, str | None], str | None],
        kill_kinds: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name="soak-faults", daemon=True)
        self.sandbox = sandbox
        self.schedule = schedule
        self.kill_busy_sync = kill_busy_sync
        self.kill_kinds = kill_kinds  # the n-th kill waits for a sync process of kill_kinds[n % len]
        self.log = FaultLog()
        self.errors: list[str] = []
        self._log_lock = threading.Lock()
        self._kills: list[threading.Thread] = []  # a kill waits for its victim without delaying the schedule
        self._halt = threading.Event()
        self._t0 = time.monotonic()

    def begin(self) -> FaultRunner:
        self._t0 = time.monotonic()
        self.start()
        return self

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=120)

    def run(self) -> None:
        for event in self.schedule:
            if self._halt.wait(max(0.0, self._t0 + event.at - time.monotonic())):
                break
            if event.kind == "process_killed":
                number = len(self._kills)
                kill = threading.Thread(target=self._kill, args=(event, number), name="soak-kill", daemon=True)
                self._kills.append(kill)
                kill.start()
                continue
            self._run_event(event, self._apply)
        for kill in self._kills:
            kill.join(timeout=120)

    def _run_event(self, event: FaultEvent, apply: Callable[[FaultEvent], str]) -> None:
        try:
            detail = apply(event)
        except Exception as exc:  # reported by the soak as a harness error
            with self._log_lock:
                self.errors.append(f"{event.kind}/{event.action}: {type(exc).__name__}: {exc}")
            return
        with self._log_lock:
            if event.action in ("start", "once") and event.kind != "calm":
                self.log.injected[event.kind] += 1
            self.log.lines.append(f"{time.monotonic() - self._t0:7.2f}s {event.kind} {event.action} {detail}")

    def _kill(self, event: FaultEvent, number: int) -> None:
        """The ``number``-th kill: wait for a process of the next kind in ``kill_kinds`` to be inside a
        sync, then SIGKILL it."""
        wanted = self.kill_kinds[number % len(self.kill_kinds)] if self.kill_kinds else None

        def kill(_: FaultEvent) -> str:
            victim = self.kill_busy_sync(90.0, wanted)
            if victim is None:
                with self._log_lock:
                    self.log.kills_missed += 1
                raise RuntimeError(f"no {wanted or 'sync'} process was inside a sync within 90 s")
            return victim

        self._run_event(event, kill)

    def _apply(self, event: FaultEvent) -> str:
        sb, kind, start = self.sandbox, event.kind, event.action == "start"
        if kind == "latency_spike":
            sb.set_faults(latency_ms=250 if start else 0, latency_jitter_ms=250 if start else 0)
            return "250±250 ms" if start else ""
        if kind == "server_errors_5pct":
            sb.set_faults(error_rate=0.05 if start else 0.0, error_statuses=[500, 503])
            return "500/503" if start else ""
        if kind == "throttle_burst":
            if start:
                sb.set_faults(fail_next=[{"status": 429, "count": 20}])
                sb.set_limits(per_window=40, window_seconds=5.0)
                return "20 forced 429s, limits 40 per 5 s"
            sb.set_limits(**DEFAULT_LIMITS)
            return "limits back to 500/min"
        if kind == "xml_throttle_burst":
            if start:
                sb.set_faults(xml_throttle=True, fail_next=[{"status": 429, "count": 10}])
                return "10 forced 429s with XML bodies"
            sb.set_faults(xml_throttle=False)
            return ""
        if kind == "outage":
            sb.set_faults(down=start)
            return "API answers 503" if start else ""
        if kind == "token_revoked":
            revoked = sb.control("revoke", {})["revoked_access_tokens"]
            return f"{revoked} access tokens"
        if kind == "sandbox_restarted":
            downtime = sb.restart()
            self.log.restart_downtimes.append(downtime)
            return f"down {downtime:.2f} s"
        if kind == "calm":
            sb.calm()
            return "all faults off"
        raise ValueError(f"unknown fault kind {kind!r}")

"""Business activity during a soak: the sandbox simulator called in small batches from a thread.

Every change it reports is kept, so the final audit can prove each one reached the mirror and the
change log. Calls hold the sandbox lock, so a restart never happens in the middle of one (we would not
know which changes it made).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from smartsync_pipeline_tests.reliability.chaos_sandbox import ChaosSandbox


@dataclass(frozen=True)
class SimulatedChange:
    entity: str
    id: str
    op: str  # create | update | delete
    sync_token: str


class ActivityDriver(threading.Thread):
    def __init__(self, sandbox: ChaosSandbox, operations: int, interval: float, seed: int = 1000) -> None:
        super().__init__(name="soak-activity", daemon=True)
        self.sandbox = sandbox
        self.operations = operations
        self.interval = interval
        self.seed = seed
        self.changes: list[SimulatedChange] = []
        self.calls = 0
        self.errors: list[str] = []
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=120)

    def run(self) -> None:
        while not self._halt.is_set():
            self.calls += 1
            try:
                answer = self.sandbox.control(
                    "simulate",
                    {"realm_id": self.sandbox.realm_id, "operations": self.operations, "seed": self.seed + self.calls},
                )
            except Exception as exc:  # the sandbox's own failure; reported by the soak
                self.errors.append(f"simulate call {self.calls}: {type(exc).__name__}: {exc}")
            else:
                self.changes += [
                    SimulatedChange(c["entity"], str(c["id"]), c["op"], str(c["sync_token"])) for c in answer["changes"]
                ]
            self._halt.wait(self.interval)  # business pace, not a race fix

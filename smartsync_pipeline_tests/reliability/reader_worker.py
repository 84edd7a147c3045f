"""A soak reader: one process asking the domain services business questions in a loop.

Run as ``python -m smartsync_pipeline_tests.reliability.reader_worker --home H --realm R --out F ...``.
Every read is one JSON line in ``--out``: the call, the max_age asked for, when it was asked, how long
it took, the provenance (source, as_of, stale, reason) or the exception. The first line says "ready",
the last one carries this process's totals (refreshes, the syncs it ran, their retries and lock waits).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.errors import ReauthorizationRequired
from smartsync_pipeline.services import DomainServices, for_business
from smartsync_pipeline.smart.errors import DataUnavailableError
from smartsync_pipeline.smart.reader import SmartReader
from smartsync_pipeline.sync.engine import SyncEngine
from smartsync_pipeline.sync.report import SyncReport
from smartsync_pipeline_tests.reliability.soak_config import MAX_AGE_MIX

CALLS: dict[str, Callable[[DomainServices, float | None], Any]] = {
    "bills_due_30d": lambda s, age: s.bills.get_bills_due_in_days(30, max_age=age),
    "overdue_bills": lambda s, age: s.bills.get_overdue_bills(max_age=age),
    "invoices_due_14d": lambda s, age: s.invoices.get_ar_due_in_days(14, max_age=age),
    "cash_position": lambda s, age: s.accounts.get_cash_position(max_age=age),
}


class RecordingEngine(SyncEngine):
    """The real sync engine; it only remembers the reports of the refreshes it ran."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.reports: list[SyncReport] = []

    def sync(self, *args: Any, **kwargs: Any) -> SyncReport:
        report = super().sync(*args, **kwargs)
        self.reports.append(report)
        return report


def read_once(services: DomainServices, call: str, max_age: float | None) -> dict[str, Any]:
    """One read and what came back (or what was raised), as a JSON-ready record."""
    record: dict[str, Any] = {"kind": "read", "call": call, "max_age": max_age, "requested_at": time.time()}
    started = time.perf_counter()
    try:
        answer = CALLS[call](services, max_age)
    except DataUnavailableError as exc:
        record.update(outcome="unavailable", error=str(exc)[:300])
    except ReauthorizationRequired as exc:
        record.update(outcome="invalid_grant", error=str(exc)[:300])
    except Exception as exc:
        record.update(
            outcome="exception",
            error=f"{type(exc).__name__}: {str(exc)[:300]}",
            traceback=traceback.format_exc()[-2000:],
        )
    else:
        p = answer.provenance
        record.update(
            outcome="answer",
            source=p.source,
            as_of=p.as_of.timestamp() if p.as_of else None,
            stale=p.stale,
            reason=p.reason,
            max_age_seconds=p.max_age_seconds,
            rows=len(answer.rows) if hasattr(answer, "rows") else len(answer.accounts),
        )
    record["latency"] = time.perf_counter() - started
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", required=True)
    parser.add_argument("--realm", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.25)
    parser.add_argument("--deadline", type=float, required=True, help="epoch seconds: stop reading after this")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    ages = [age for _, age in MAX_AGE_MIX]
    weights = [w for w, _ in MAX_AGE_MIX]
    calls = sorted(CALLS)
    engine = RecordingEngine(Home(Path(args.home)))
    reader = SmartReader(smartsync_home=args.home).with_engine(engine)
    services = for_business(reader, args.realm)
    stop_file = Path(args.stop_file)
    with open(args.out, "a", buffering=1) as out:
        out.write(json.dumps({"kind": "ready", "pid": __import__("os").getpid()}) + "\n")
        while not stop_file.exists() and time.time() < args.deadline:
            record = read_once(services, rng.choice(calls), rng.choices(ages, weights)[0])
            out.write(json.dumps(record) + "\n")
            time.sleep(args.pause)  # think time of a user; nothing waits on it
        out.write(
            json.dumps(
                {
                    "kind": "done",
                    "reader_stats": reader.stats,
                    "syncs": len(engine.reports),
                    "retries": sum(r.retries for r in engine.reports),
                    "lock_wait_seconds": sum(r.lock_wait_seconds for r in engine.reports),
                    "lock_waits": sum(r.lock_wait_seconds > 0.01 for r in engine.reports),
                    "api_calls": sum(r.api_calls for r in engine.reports),
                }
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A separate process that uses the coordination backend, driven by the tests over stdin/stdout.

``python -m smartsync_pipeline_tests.coordination.holder lock URL NAME``: take the advisory lock, print
``held``, keep it until stdin closes (or the process is killed).
``... count URL NAME FILE N``: N times, under the lock, read an integer from FILE and write it back + 1.
``... slots URL NAMESPACE REALM N PER_WINDOW WINDOW CONCURRENT``: N requests through the shared
limiter, printing ``<start> <end>`` (wall clock) of each held slot.
``... hold-slots URL NAMESPACE REALM CONCURRENT``: take every slot, print ``held``, wait for stdin.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path

from smartsync_pipeline.coordination import AdvisoryLock, SharedRateLimiter


def main(argv: list[str]) -> None:
    command = argv[0]
    if command == "lock":
        with AdvisoryLock(argv[1], argv[2]).exclusive(timeout=30):
            print("held", flush=True)
            sys.stdin.read()
    elif command == "count":
        lock, path, times = AdvisoryLock(argv[1], argv[2]), Path(argv[3]), int(argv[4])
        for _ in range(times):
            with lock.exclusive(timeout=60):
                value = int(path.read_text() or "0")
                path.write_text(str(value + 1))
    elif command == "slots":
        url, namespace, realm, n, per_window, window, concurrent = argv[1:8]
        limiter = SharedRateLimiter(
            url,
            namespace,
            realm,
            per_window=int(per_window),
            window_seconds=float(window),
            max_concurrent=int(concurrent),
        )
        for _ in range(int(n)):
            with limiter.slot():
                start = time.time()
                time.sleep(0.02)  # the "request": holds the slot for a moment
                print(f"{start} {time.time()}", flush=True)
        limiter.close()
    elif command == "hold-slots":
        url, namespace, realm, concurrent = argv[1:5]
        limiter = SharedRateLimiter(url, namespace, realm, max_concurrent=int(concurrent))
        with ExitStack() as stack:
            for _ in range(int(concurrent)):
                stack.enter_context(limiter.slot())
            print("held", flush=True)
            sys.stdin.read()
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Run a sandbox in the foreground: print the connection line, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading

from smartsync_pipeline.sandbox.config import SandboxConfig
from smartsync_pipeline.sandbox.server import SandboxServer

log = logging.getLogger("smartsync.sandbox")


def serve_forever(config: SandboxConfig) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    # Handlers first: whoever reads the connection line may stop us at once, and must get a clean exit.
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = SandboxServer(config).start()
    info = {**server.info, "pid": os.getpid()}
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    log.info(
        "sandbox serving %s (scale=%s seed=%d realms=%d)", info["api_base"], config.scale, config.seed, config.realms
    )
    while not stopping.wait(0.1):
        if config.parent_pid is not None and os.getppid() != config.parent_pid:
            log.info("the process that started the sandbox is gone; stopping")
            break
    server.stop()
    log.info("sandbox stopped")
    return 0

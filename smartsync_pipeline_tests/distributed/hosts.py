"""Worker "hosts" for the distributed test: Linux network namespaces joined to the machine by veth.

A host has its own network stack (its 127.0.0.1 is its own), its own host name (``unshare --uts``),
and shares with the others only what a real deployment shares: the services (PostgreSQL, RabbitMQ,
the QBO sandbox), reached over its veth link through ``tcp_relay``, and the storage path (the same
filesystem). Killing a host sends SIGKILL to every process in its namespace at once.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

RELAY = [sys.executable, "-m", "smartsync_pipeline_tests.distributed.tcp_relay"]


def require_network_namespaces() -> None:
    """Skip (fail when CI=true) when this process cannot make network namespaces."""
    problem = None
    if os.geteuid() != 0:
        problem = "network namespaces need root"
    elif shutil.which("ip") is None or shutil.which("unshare") is None:
        problem = "iproute2's `ip` and util-linux's `unshare` are needed"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem + " (CI=true: not skipping)")
        pytest.skip(problem)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


class WorkerHost:
    """One namespace ``<name>`` with a veth link 10.<a>.<b>.1 (machine side) / .2 (host side)."""

    def __init__(self, name: str, service_ports: Sequence[int], log_dir: Path) -> None:
        self.name = name
        tag = f"{random.randrange(16**4):04x}"
        self.netns = f"ss-{name}-{tag}"
        self._veth_outside, self._veth_inside = f"vo{tag}{name[-1]}", f"vi{tag}{name[-1]}"
        octet_a, octet_b = random.randrange(200, 250), random.randrange(0, 250)
        self.outside_ip, self.inside_ip = f"10.{octet_a}.{octet_b}.1", f"10.{octet_a}.{octet_b}.2"
        self.log_dir = log_dir
        self._relays: list[subprocess.Popen] = []
        self.worker: subprocess.Popen | None = None
        self.worker_log = log_dir / f"{name}.log"
        _run("ip", "netns", "add", self.netns)
        try:
            _run("ip", "link", "add", self._veth_outside, "type", "veth", "peer", "name", self._veth_inside)
            _run("ip", "link", "set", self._veth_inside, "netns", self.netns)
            _run("ip", "addr", "add", f"{self.outside_ip}/30", "dev", self._veth_outside)
            _run("ip", "link", "set", self._veth_outside, "up")
            for argv in (
                ("ip", "addr", "add", f"{self.inside_ip}/30", "dev", self._veth_inside),
                ("ip", "link", "set", self._veth_inside, "up"),
                ("ip", "link", "set", "lo", "up"),
            ):
                _run("ip", "netns", "exec", self.netns, *argv)
            ports = [str(p) for p in service_ports]
            # Outside: veth address -> the machine's services; inside: the host's own 127.0.0.1 -> veth.
            self._relays.append(self._start_relay([*RELAY, self.outside_ip, "127.0.0.1", *ports]))
            self._relays.append(
                self._start_relay(["ip", "netns", "exec", self.netns, *RELAY, "127.0.0.1", self.outside_ip, *ports])
            )
        except BaseException:
            self.remove()
            raise

    @staticmethod
    def _start_relay(argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "relay did not start"
        return proc

    def start_worker(self, env: Mapping[str, str], concurrency: int = 1) -> None:
        """A Celery worker of smartsync's app on this host, named ``<name>@<name>``."""
        script = (
            f"hostname {self.name} && exec {sys.executable} -m celery -A smartsync_pipeline.defs.celery_worker "
            f"worker --queues dagster --concurrency {concurrency} --hostname {self.name}@{self.name} "
            "--include smartsync_pipeline.definitions "
            "--without-gossip --without-mingle --loglevel INFO"
        )
        log = open(self.worker_log, "w")
        self.worker = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--uts", "sh", "-c", script],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.worker_log.read_text() if self.worker_log.exists() else ""
            if " ready." in text:
                return
            if self.worker is not None and self.worker.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} did not become ready:\n{self.worker_log.read_text()[-3000:]}")

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def kill(self) -> float:
        """SIGKILL every process of the host at once (a host that lost power); returns when it happened."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed_at = time.time()
        if self.worker is not None:
            self.worker.wait(timeout=30)
        return killed_at

    def remove(self) -> None:
        threads = []
        for proc in [*([self.worker] if self.worker else []), *self._relays]:
            if proc.poll() is None:
                proc.kill()
            threads.append(threading.Thread(target=proc.wait, daemon=True))
        for pid in self.pids() if self._exists() else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for t in threads:
            t.start()
            t.join(10)
        subprocess.run(["ip", "link", "del", self._veth_outside], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)

    def _exists(self) -> bool:
        return Path("/var/run/netns", self.netns).exists() or Path("/run/netns", self.netns).exists()

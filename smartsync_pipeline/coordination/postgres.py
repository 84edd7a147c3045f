"""Connections to the coordination database: autocommit, named, and quick to notice a dead peer.

Each connection is named ``smartsync <host> pid <n>`` (``application_name``), so a lock's holder can
be reported by host and process. Keepalives are set on both ends: the server's (``tcp_keepalives_*``,
session settings) make it drop the session of a host that vanished (power loss, network cut) after
10 s idle + 3 unanswered probes 5 s apart, about 25 s, which releases that host's session locks; the
client's make a worker notice a dead database instead of waiting forever.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import psycopg2
import psycopg2.extensions

KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def holder_name() -> str:
    """How this process appears to other hosts: host name and pid, nothing else."""
    return f"smartsync {socket.gethostname()[:40]} pid {os.getpid()}"


SERVER_KEEPALIVES = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"


def connect(url: str) -> Any:
    """A new autocommit connection; connection errors never carry the URL (it may hold a password)."""
    try:
        given = psycopg2.extensions.parse_dsn(url).get("options", "")
        options = f"{given} {SERVER_KEEPALIVES}".strip()
        conn = psycopg2.connect(url, application_name=holder_name(), connect_timeout=10, options=options, **KEEPALIVES)
    except psycopg2.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionError(f"cannot reach the coordination database: {_redact(first, url)}") from None
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    return conn


def _redact(message: str, url: str) -> str:
    password = psycopg2.extensions.parse_dsn(url).get("password") if url else None
    return message.replace(password, "***") if password else message

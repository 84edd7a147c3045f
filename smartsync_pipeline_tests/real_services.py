"""The machine's real services for tests: PostgreSQL, RabbitMQ. Skipped locally when one is down,
never when CI=true (CI must run them)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_HOST, PG_PORT, PG_ADMIN_DB = "127.0.0.1", 5432, "test"
RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672


def require_service(name: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError:
        message = f"{name} is not reachable at {host}:{port}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: not skipping)")
        pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database as a ``postgresql://`` URL; dropped (sessions ended) afterwards."""
    import psycopg2

    require_service("PostgreSQL", PG_HOST, PG_PORT)
    con, user = None, None
    for candidate in ("postgres", "root"):
        try:
            con = psycopg2.connect(host=PG_HOST, port=PG_PORT, dbname=PG_ADMIN_DB, user=candidate, connect_timeout=5)
            user = candidate
            break
        except psycopg2.OperationalError:
            continue
    if con is None:
        pytest.fail(f"cannot connect to PostgreSQL at {PG_HOST}:{PG_PORT} as postgres or root")
    con.autocommit = True
    name = f"smartsync_test_{uuid.uuid4().hex[:12]}"
    try:
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with con.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        con.close()

"""Which executor runs the steps of a run, chosen by configuration.

``SMARTSYNC_EXECUTOR`` unset (or ``multiprocess``) keeps Dagster's default: steps in processes of the
machine that runs the run, nothing else needed (``make demo``). ``in_process`` runs them inside the run
worker. ``celery`` hands every step to a pool of Celery workers on any number of machines through the
broker named by ``SMARTSYNC_CELERY_BROKER`` (RabbitMQ: ``pyamqp://guest:guest@127.0.0.1:5672//``); the
workers run ``celery -A smartsync_pipeline.defs.celery_worker worker`` with the same settings.
ARCHITECTURE.md ("Running on several machines") says why Celery over RabbitMQ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

EXECUTOR_ENV = "SMARTSYNC_EXECUTOR"
BROKER_ENV = "SMARTSYNC_CELERY_BROKER"
BACKEND_ENV = "SMARTSYNC_CELERY_BACKEND"
EXECUTORS = ("multiprocess", "in_process", "celery")

# Celery settings shared by the executor (the run's side) and the workers (celery_worker.py):
# - acks_late + reject_on_worker_lost: a step's message is acknowledged only when the step is done, so a
#   worker killed mid-step (SIGKILL, host lost) leaves it unacknowledged and RabbitMQ hands it to another
#   worker; the sync engine makes the second attempt safe (the killed sync changed nothing).
# - prefetch 1: a worker holds at most the step it runs, so no step waits behind a long one.
CELERY_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
}


class ExecutorConfigError(ValueError):
    """SMARTSYNC_EXECUTOR / SMARTSYNC_CELERY_BROKER cannot be used as given."""


def executor_kind(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    kind = env.get(EXECUTOR_ENV, "").strip().lower().replace("-", "_") or "multiprocess"
    if kind not in EXECUTORS:
        raise ExecutorConfigError(f"{EXECUTOR_ENV}={kind!r} is not one of {', '.join(EXECUTORS)}")
    return kind


def celery_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The celery executor's config (broker and backend by environment variable, never by value)."""
    env = os.environ if environ is None else environ
    if not env.get(BROKER_ENV, "").strip():
        raise ExecutorConfigError(
            f"{EXECUTOR_ENV}=celery needs {BROKER_ENV}, e.g. pyamqp://guest:guest@127.0.0.1:5672//"
        )
    config: dict[str, Any] = {"broker": {"env": BROKER_ENV}, "config_source": dict(CELERY_SETTINGS)}
    if env.get(BACKEND_ENV, "").strip():
        config["backend"] = {"env": BACKEND_ENV}
    return config


def executor_from_env(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """The executor for ``Definitions`` (None: Dagster's default multiprocess executor)."""
    kind = executor_kind(environ)
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_settings(environ), name="celery")
    return None

"""The executor is chosen by configuration, and the instance file queues runs per company."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest
import yaml

from smartsync_pipeline.cli.instance_commands import repository_instance_template
from smartsync_pipeline.defs.executor import (
    CELERY_SETTINGS,
    ExecutorConfigError,
    celery_settings,
    executor_from_env,
)
from smartsync_pipeline.defs.run_tags import PARTITION_TAG


def test_default_is_daggers_own_executor() -> None:
    assert executor_from_env({}) is None  # Definitions then uses Dagster's multiprocess default
    assert executor_from_env({"SMARTSYNC_EXECUTOR": "multiprocess"}) is None
    assert executor_from_env({"SMARTSYNC_EXECUTOR": "in_process"}) is dg.in_process_executor


def test_celery_needs_a_broker_and_names_it_by_variable() -> None:
    with pytest.raises(ExecutorConfigError, match="SMARTSYNC_CELERY_BROKER"):
        executor_from_env({"SMARTSYNC_EXECUTOR": "celery"})
    env = {"SMARTSYNC_EXECUTOR": "celery", "SMARTSYNC_CELERY_BROKER": "pyamqp://guest:s3cret@127.0.0.1:5672//"}
    executor = executor_from_env(env)
    assert executor is not None and executor.name == "celery"
    config = celery_settings(env)
    assert config["broker"] == {"env": "SMARTSYNC_CELERY_BROKER"}  # the URL (and its password) stays in env
    assert "s3cret" not in repr(config)
    assert config["config_source"]["task_acks_late"] is True  # a killed worker's step goes to another


def test_an_unknown_executor_is_refused() -> None:
    with pytest.raises(ExecutorConfigError, match="not one of"):
        executor_from_env({"SMARTSYNC_EXECUTOR": "kubernetes"})


def test_the_worker_app_uses_the_executors_settings() -> None:
    """``celery -A smartsync_pipeline.defs.celery_worker``: the broker from the environment, the executor's
    settings, dagster-celery's task (in a fresh interpreter, as a worker host starts it)."""
    probe = (
        "import json; from smartsync_pipeline.defs import celery_worker as w; "
        "from smartsync_pipeline.defs.executor import CELERY_SETTINGS as s; "
        "print(json.dumps([w.app.conf.broker_url, {k: w.app.conf[k] for k in s}, 'execute_plan' in w.app.tasks]))"
    )
    env = {**os.environ, "SMARTSYNC_CELERY_BROKER": "pyamqp://guest:guest@127.0.0.1:5672/unused"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    broker, settings, has_task = json.loads(out.stdout.strip().splitlines()[-1])
    assert broker == "pyamqp://guest:guest@127.0.0.1:5672/unused"
    assert settings == CELERY_SETTINGS and has_task
    env.pop("SMARTSYNC_CELERY_BROKER")
    refused = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "needs SMARTSYNC_CELERY_BROKER" in refused.stderr


def test_the_run_queue_limits_runs_per_company(tmp_path) -> None:
    """dagster.yaml: at most 2 runs of one company at once, keyed on the tag partitioned runs carry."""
    (tmp_path / "dagster.yaml").write_text(repository_instance_template().read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": PARTITION_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 2} in limits
    doc = yaml.safe_load(repository_instance_template().read_text())
    assert doc["concurrency"]["runs"]["max_concurrent_runs"] >= 2

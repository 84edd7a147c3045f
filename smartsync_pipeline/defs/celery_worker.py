"""The Celery application a smartsync worker host runs:

    celery -A smartsync_pipeline.defs.celery_worker worker --queues dagster --concurrency 2

It is dagster-celery's app with the settings of ``defs/executor.py`` (same broker, late
acknowledgement), so a worker and the runs that send it steps cannot disagree. The worker loads the
code location from the step it receives and writes events to the run's Dagster instance (PostgreSQL).
"""

from __future__ import annotations

import os

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from smartsync_pipeline.defs.executor import BACKEND_ENV, BROKER_ENV, CELERY_SETTINGS, ExecutorConfigError

if not os.environ.get(BROKER_ENV, "").strip():
    raise ExecutorConfigError(f"a smartsync Celery worker needs {BROKER_ENV} (the broker the runs send steps to)")

app = make_app(
    CeleryExecutor.for_cli(
        broker=os.environ[BROKER_ENV],
        backend=os.environ.get(BACKEND_ENV) or None,
        config_source=dict(CELERY_SETTINGS),
    ).app_args()
)
execute_plan = create_task(app)

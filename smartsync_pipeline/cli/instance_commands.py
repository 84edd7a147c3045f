"""``smartsync instance init``: write ``$DAGSTER_HOME/dagster.yaml`` for this installation.

The file is the repository's ``dagster.yaml`` (SQLite under DAGSTER_HOME, the run limit, run
monitoring), plus a PostgreSQL ``storage:`` block when ``SMARTSYNC_PG_URL`` is set. The block names
the environment variable, never its value, so the password in the URL is not written to disk.
Afterwards the instance is opened once, which creates its storage (tables in SQLite or PostgreSQL).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import click
import yaml

import smartsync_pipeline
from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.durable_files import write_atomically

PG_URL_ENV = "SMARTSYNC_PG_URL"

POSTGRES_STORAGE_BLOCK = f"""
# Added by `smartsync instance init` because {PG_URL_ENV} was set: runs, event logs and schedules
# live in PostgreSQL (dagster-postgres). The URL is read from the environment when Dagster starts.
storage:
  postgres:
    postgres_url:
      env: {PG_URL_ENV}
"""


class InstanceConfigError(ValueError):
    """The instance file cannot be written as asked."""


def repository_instance_template() -> Path:
    """The repository's top-level ``dagster.yaml`` (present in a source checkout / editable install)."""
    return Path(smartsync_pipeline.__file__).resolve().parent.parent / "dagster.yaml"


def instance_config_text(template: str, *, postgres: bool) -> str:
    """The instance file: the template, plus the Postgres storage block when ``postgres``."""
    doc = yaml.safe_load(template) or {}
    if not isinstance(doc, dict):
        raise InstanceConfigError("the instance template is not a YAML mapping")
    if not postgres:
        return template
    if "storage" in doc:
        raise InstanceConfigError("the instance template already configures `storage:`; not adding Postgres to it")
    text = template.rstrip("\n") + "\n" + POSTGRES_STORAGE_BLOCK
    yaml.safe_load(text)  # still one valid document
    return text


def check_postgres_url(url: str) -> None:
    """Refuse a URL whose driver is not installed, naming the fix (never the URL: it may hold a password).

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, while dagster-postgres installs psycopg2;
    ``postgresql+psycopg2://`` works with what dagster-postgres brings."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "postgres":
        raise InstanceConfigError(
            f"{PG_URL_ENV} must start with postgresql+psycopg2:// (SQLAlchemy rejects postgres://)"
        )
    if scheme == "postgresql" and importlib.util.find_spec("psycopg") is None:
        raise InstanceConfigError(
            f"{PG_URL_ENV} starts with postgresql://, which SQLAlchemy 2.1 maps to psycopg 3 (not installed); "
            "write postgresql+psycopg2://... instead (dagster-postgres uses psycopg2)"
        )
    if not scheme.startswith("postgresql"):
        raise InstanceConfigError(f"{PG_URL_ENV} is not a postgresql+psycopg2:// URL")


@dataclass(frozen=True)
class InstanceInit:
    path: Path
    storage: str  # "sqlite" or "postgres"
    changed: bool


def write_instance_config(
    dagster_home: Path, *, template: Path | None = None, postgres: bool | None = None, force: bool = False
) -> InstanceInit:
    """Write ``dagster_home/dagster.yaml``; ``postgres`` defaults to whether SMARTSYNC_PG_URL is set."""
    source = template or repository_instance_template()
    if not source.is_file():
        raise InstanceConfigError(f"no instance template at {source}; pass --template")
    use_postgres = bool(os.environ.get(PG_URL_ENV)) if postgres is None else postgres
    if use_postgres:
        check_postgres_url(os.environ.get(PG_URL_ENV, ""))
    text = instance_config_text(source.read_text(), postgres=use_postgres)
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    storage = "postgres" if use_postgres else "sqlite"
    if target.exists():
        if target.read_text() == text:
            return InstanceInit(target, storage, changed=False)
        if not force:
            raise InstanceConfigError(f"{target} exists and differs; use --force to replace it")
    write_atomically(target, text, mode=0o644)
    return InstanceInit(target, storage, changed=True)


def open_instance(dagster_home: Path) -> str:
    """Open the instance once (creates or migrates its storage); returns a one-line description."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        storage = type(instance.run_storage).__name__
        runs = instance.get_concurrency_config().run_queue_config.max_concurrent_runs
    return f"run storage {storage}, at most {runs} concurrent runs"


@click.group()
def instance() -> None:
    """The Dagster instance (DAGSTER_HOME) smartsync runs in."""


@instance.command("init")
@click.option(
    "--dagster-home",
    envvar="DAGSTER_HOME",
    type=click.Path(file_okay=False, path_type=Path),
    help="instance folder  [default: $DAGSTER_HOME]",
)
@click.option(
    "--template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="instance file to start from (default: the repository's dagster.yaml)",
)
@click.option("--force", is_flag=True, help="replace an existing, different dagster.yaml")
@click.option("--no-open", is_flag=True, help="only write the file; do not open the instance")
@friendly_errors
def init(dagster_home: Path | None, template: Path | None, force: bool, no_open: bool) -> None:
    """Write $DAGSTER_HOME/dagster.yaml (Postgres storage when SMARTSYNC_PG_URL is set)."""
    if dagster_home is None:
        raise click.UsageError("DAGSTER_HOME is not set: set it, or pass --dagster-home FOLDER")
    result = write_instance_config(dagster_home.resolve(), template=template, force=force)
    state = "wrote" if result.changed else "unchanged:"
    click.echo(f"{state} {result.path} ({result.storage} storage)")
    if not no_open:
        click.echo(f"instance ready: {open_instance(dagster_home.resolve())}")

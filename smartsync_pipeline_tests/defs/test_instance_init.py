"""`smartsync instance init` and `register_realm`: the instance file, and realms as partitions."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from smartsync_pipeline.cli.instance_commands import instance
from smartsync_pipeline.defs.partitions import PartitionRegistrationError, register_realm
from smartsync_pipeline_tests.defs.conftest import REPO_ROOT


def _init(dagster_home: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(
        instance, ["init", "--dagster-home", str(dagster_home), *args], env=env, catch_exceptions=False
    )


def test_init_without_postgres_writes_the_repository_file_and_opens_sqlite(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SMARTSYNC_PG_URL", raising=False)
    result = _init(tmp_path / "dh")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dh" / "dagster.yaml").read_text() == (REPO_ROOT / "dagster.yaml").read_text()
    assert "(sqlite storage)" in result.output and "SqliteRunStorage" in result.output
    assert "at most 4 concurrent runs" in result.output

    again = _init(tmp_path / "dh")
    assert again.exit_code == 0 and again.output.startswith("unchanged:")

    (tmp_path / "dh" / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    refused = _init(tmp_path / "dh", "--no-open")
    assert refused.exit_code != 0 and "use --force" in refused.output
    forced = _init(tmp_path / "dh", "--force", "--no-open")
    assert forced.exit_code == 0
    assert (tmp_path / "dh" / "dagster.yaml").read_text() == (REPO_ROOT / "dagster.yaml").read_text()


@pytest.mark.postgres
def test_init_with_postgres_url_adds_storage_by_reference_and_creates_the_tables(
    tmp_path: Path, postgres_url: str
) -> None:
    result = _init(tmp_path / "dh", env={"SMARTSYNC_PG_URL": postgres_url})
    assert result.exit_code == 0, result.output
    assert "(postgres storage)" in result.output and "PostgresRunStorage" in result.output
    text = (tmp_path / "dh" / "dagster.yaml").read_text()
    assert text.startswith((REPO_ROOT / "dagster.yaml").read_text().rstrip("\n"))
    doc = yaml.safe_load(text)
    assert doc["storage"] == {"postgres": {"postgres_url": {"env": "SMARTSYNC_PG_URL"}}}
    assert doc["concurrency"]["runs"]["max_concurrent_runs"] == 4
    assert postgres_url not in text


def test_init_refuses_a_url_whose_driver_is_missing_without_printing_it(tmp_path: Path) -> None:
    url = "postgresql://smartsync:s3cret-pw@127.0.0.1:5432/test"
    result = CliRunner().invoke(
        instance, ["init", "--dagster-home", str(tmp_path / "dh")], env={"SMARTSYNC_PG_URL": url}
    )
    assert result.exit_code != 0
    assert "postgresql+psycopg2://" in result.output
    assert "s3cret-pw" not in result.output and not (tmp_path / "dh" / "dagster.yaml").exists()


def test_register_realm_without_dagster_home_does_nothing(monkeypatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert register_realm("123") is False


def test_register_realm_adds_the_partition_once(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "dh"
    assert _init(home, "--no-open").exit_code == 0
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert register_realm("4620816365") is True
    assert register_realm("4620816365") is True
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert inst.get_dynamic_partitions("realms") == ["4620816365"]


def test_register_realm_on_a_broken_instance_says_so(tmp_path: Path, monkeypatch) -> None:
    """A configured instance that refuses is an error (connect exits non-zero and says the company is
    connected but not in Dagster), not a warning behind exit 0."""
    home = tmp_path / "dh"
    home.mkdir()
    (home / "dagster.yaml").write_text("storage: [this is not a storage config\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with pytest.raises(PartitionRegistrationError):
        register_realm("4620816365", attempts=2)

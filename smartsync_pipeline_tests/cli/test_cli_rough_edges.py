"""The CLI's rough edges a first-hour user hit (issue 14 item 6): paging in ``bills-due``, ``log`` cut to
80 columns and its unexplained empty cells, ``instance init --help`` calling a defaulted option required,
and options without help. In-process through click's runner, on a real connected sandbox company."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli
from smartsync_pipeline_tests.conftest import ConnectedCompany


@pytest.fixture
def synced(sandbox_factory, smartsync_home) -> ConnectedCompany:
    # The struggling profile: enough open bills (over 60) for bills-due to page.
    company = ConnectedCompany(smartsync_home, sandbox_factory(profile="struggling"))
    company.engine().sync()
    return company


def run(*args: str, columns: int | None = None) -> click.testing.Result:
    env = {"COLUMNS": str(columns)} if columns else {}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _bill_label(record: dict) -> str:
    return record["doc_number"] or record["id"]


def test_bills_due_pages_and_says_what_is_hidden(synced: ConnectedCompany) -> None:
    records = json.loads(run("bills-due", "--days", "3650", "--json").output)["bills"]
    assert len(records) > 60, "the small company has enough open bills to page"

    default = run("bills-due", "--days", "3650", columns=200).output
    hidden = records[50:]
    overdue = sum(r["is_overdue"] for r in hidden)
    assert (
        f"showing rows 1-50 of {len(records)} (earliest due first); {len(hidden)} hidden: "
        f"{overdue} overdue, {len(hidden) - overdue} not yet due"
    ) in default
    assert "--offset 50 for the next page" in default

    page = run("bills-due", "--days", "3650", "--limit", "5", "--offset", "10", columns=200).output
    table_rows = [line for line in page.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in table_rows] == [_bill_label(r) for r in records[10:15]]
    assert f"showing rows 11-15 of {len(records)}" in page

    everything = run("bills-due", "--days", "3650", "--all", columns=200).output
    assert len([line for line in everything.splitlines() if line.startswith("│")]) == len(records)
    assert "hidden" not in everything


def test_log_wraps_instead_of_cutting_and_explains_empty_cells(synced: ConnectedCompany) -> None:
    synced.simulate(80, seed=3)
    synced.engine().sync()
    changes = json.loads(run("log", "--limit", "500", "--json").output)
    ops = {c["op"] for c in changes}
    assert {"create", "update", "delete"} <= ops, ops

    text = run("log", "--limit", "500").output  # not a terminal: 80 columns
    assert "…" not in text, "a cell was cut"
    assert "-→-" not in text and "- → -" not in text
    assert "token: QBO SyncToken before → after" in text  # the legend
    rows = _table_rows(text)
    assert [r[0] for r in rows] == [str(c["change_id"]) for c in changes]
    for row, change in zip(rows, changes, strict=True):
        assert row[3] == change["entity_id"]  # whole, not cut
        if change["op"] == "create":
            assert row[5] == f"new→{change['sync_token_after']}" and row[6] == "(newobject)"
        elif change["op"] == "delete":
            assert row[5] == f"{change['sync_token_before'] or 'unseen'}→deleted" and row[6] == "(deleted)"
        else:
            assert (
                row[6] == "".join(", ".join(change["changed_fields"]).split()) or row[6] == "(onlySyncToken/MetaData)"
            )


def _table_rows(text: str) -> list[list[str]]:
    """The cells of a rich table, each cell's wrapped lines joined (without spaces)."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = ["".join(c.split()) for c in line.strip("│").split("│")]
        if cells[0]:
            rows.append(cells)
        else:
            rows[-1] = [a + b for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def test_instance_init_help_does_not_call_its_defaulted_option_required(monkeypatch: pytest.MonkeyPatch) -> None:
    text = run("instance", "init", "--help").output
    line = " ".join(text.split("--dagster-home", 1)[1].split("--template", 1)[0].split())
    assert "[required]" not in line and "$DAGSTER_HOME" in line
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = CliRunner().invoke(cli, ["instance", "init"])
    assert result.exit_code == 2 and "DAGSTER_HOME is not set" in result.output


def _commands(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, ctx, (*path, name))
        else:
            yield (*path, name), command


def test_every_option_has_help() -> None:
    ctx = click.Context(cli)
    missing = [
        f"smartsync {' '.join(path)} {param.opts[0]}"
        for path, command in _commands(cli, ctx)
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not param.help
    ]
    assert missing == []

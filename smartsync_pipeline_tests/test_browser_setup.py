"""Browser tests never install Chromium themselves (issue 14 item 7): `make chromium` does, in the open;
outside CI a missing browser skips with that command, in CI it fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smartsync_pipeline_tests.browser import INSTALL_COMMAND, require_chromium

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
# A package manager started as a process: an argv element or a shell line naming it.
INSTALLER = re.compile(r"""["'](apt-get|apt|dpkg)["']|["']\s*(sudo\s+)?(apt-get|apt)\s+install""")


def test_a_missing_browser_skips_naming_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_chromium(str(tmp_path / "chromium"))
    assert INSTALL_COMMAND in str(skipped.value) and "apt-get" in str(skipped.value)


def test_a_missing_browser_fails_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        require_chromium(str(tmp_path / "chromium"))
    assert INSTALL_COMMAND in str(failed.value)


def test_a_present_browser_is_returned(tmp_path: Path) -> None:
    browser = tmp_path / "chromium"
    browser.write_text("")
    assert require_chromium(str(browser)) == str(browser)


def test_no_test_runs_a_package_manager() -> None:
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{n}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__).resolve()  # the pattern itself
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if INSTALLER.search(line)
    ]
    assert offenders == []


def test_the_install_is_a_make_target_that_says_what_it_installs() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    target = makefile.split("\nchromium:\n", 1)[1].split("\n\n", 1)[0]
    assert "@echo" in target and "chromium" in target.split("@echo", 1)[1].splitlines()[0]
    assert "apt-get install" in target
    assert "make chromium" in (REPO_ROOT / ".ci" / "run").read_text()

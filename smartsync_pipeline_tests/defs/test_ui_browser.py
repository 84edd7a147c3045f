"""The Dagster UI shows the qbo mirror assets and their freshness status (headless Debian Chromium).

Starts ``dagster-webserver`` and ``dagster-daemon`` (the freshness daemon writes the status the UI
shows) on a temporary DAGSTER_HOME holding one materialized mirror partition, then drives the pages
with Playwright. Screenshots go to ``smartsync_pipeline_tests/output/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline_tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup

pytestmark = pytest.mark.browser

OUTPUT = Path(__file__).resolve().parents[1] / "output"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the process and the code servers it started (its own session, created above)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # any code server left in that session
    except ProcessLookupError:
        pass


def _wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"dagster-webserver did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorSetup]:
    require_chromium()  # before the set-up it would waste
    env = start_mirror_setup(tmp_path_factory.mktemp("ui"), realms=1)
    setup = next(env)
    setup.materialize(setup.realms[0], checks=True)
    setup.run_change_log()
    yield setup
    env.close()


@pytest.fixture(scope="module")
def dagster_ui(materialized: MirrorSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    logs = tmp_path_factory.mktemp("ui_logs")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(materialized.dagster_home),
        "SMARTSYNC_HOME": str(materialized.home.root),
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": "1",
    }
    module = ["-m", "smartsync_pipeline.definitions"]
    web = _start(
        [str(BIN / "dagster-webserver"), *module, "-h", "127.0.0.1", "-p", str(port)], env, logs / "webserver.log"
    )
    daemon = _start([str(BIN / "dagster-daemon"), "run", *module], env, logs / "daemon.log")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, web, logs / "webserver.log")
        yield url
    finally:
        _stop(web)
        _stop(daemon)


def _dismiss_community_dialog(page) -> None:
    """The UI opens a "Join the Dagster community" dialog shortly after the first load; skip it once
    (the choice is remembered for the browser context) so screenshots show the page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=15_000)
    except PlaywrightTimeout:
        return
    skip.click()
    skip.wait_for(state="hidden", timeout=15_000)


def test_asset_pages_show_the_mirrors_and_their_freshness(dagster_ui: str, materialized: MirrorSetup) -> None:
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # Tall enough for the 33 mirrors and the change log: the asset list renders only visible rows.
            page = browser.new_page(viewport={"width": 1600, "height": 2600})
            page.goto(f"{dagster_ui}/assets/qbo", wait_until="domcontentloaded")
            for table in [spec.table for spec in ENTITIES] + ["change_log"]:
                expect(page.locator(f'a[href="/assets/qbo/{table}"]').first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Warn after 15 min, stale after 30 min").first).to_be_visible()
            _dismiss_community_dialog(page)
            page.screenshot(path=str(OUTPUT / "dagster_qbo_assets.png"), full_page=True)

            # The freshness daemon evaluates every second; the page shows its latest state on load.
            deadline = time.monotonic() + 120
            while True:
                page.goto(f"{dagster_ui}/assets/qbo/bill", wait_until="domcontentloaded")
                expect(page.get_by_text("Freshness policy").first).to_be_visible(timeout=60_000)
                try:
                    expect(page.get_by_text("Passing").first).to_be_visible(timeout=5_000)
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        page.screenshot(path=str(OUTPUT / "dagster_bill_freshness_missing.png"), full_page=True)
                        raise
            expect(page.get_by_text("Fails if more than 30 minutes since last materialization")).to_be_visible()
            expect(page.get_by_text("Warns if more than 15 minutes since last materialization")).to_be_visible()
            expect(page.get_by_text(materialized.realms[0]).first).to_be_visible()
            expect(page.get_by_text("Join the Dagster community")).to_have_count(0)
            page.screenshot(path=str(OUTPUT / "dagster_bill_asset.png"), full_page=True)
        finally:
            browser.close()
    assert (OUTPUT / "dagster_bill_asset.png").stat().st_size > 10_000


def test_no_browser_download_was_needed() -> None:
    """Playwright drove the system Chromium; nothing was fetched into Playwright's browser cache."""
    require_chromium()
    cache = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH", Path.home() / ".cache" / "ms-playwright"))
    assert not cache.exists() or not any(cache.glob("chromium*")), f"unexpected browser download in {cache}"
    assert shutil.which("chromium") or os.path.exists(CHROMIUM)

"""The headless Chromium the browser tests drive (Debian's package, through Playwright).

Tests never install it: `make chromium` does, saying what it installs, and `.ci/run` calls it. Outside
CI a missing browser skips the test with that command; in CI (CI=true) it fails.
"""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
INSTALL_COMMAND = "sudo make chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium(path: str = CHROMIUM) -> str:
    """``path`` when Chromium is there; otherwise skip (fail in CI) naming the command that installs it."""
    if os.path.exists(path):
        return path
    message = f"{path} is missing: run `{INSTALL_COMMAND}` (installs Debian's chromium package with apt-get)"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: not skipping)")
    pytest.skip(message)

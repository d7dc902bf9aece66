"""Launching Debian's Chromium under Playwright, for the dashboard's browser tests and its load-time benchmark.

Playwright never downloads a browser here: the executable is the system's (`apt-get install -y chromium`, see
tests/support/system_deps.sh), found on PATH; `CHROMIUM` is None where it is absent, so that tests can skip
saying so. The flags keep the browser headless and quiet: no sandbox (containers), no GPU, no background
traffic of its own, so that every request a page makes is one the page asked for.
"""

from __future__ import annotations

import shutil

from playwright.sync_api import Browser, Playwright

CHROMIUM: str | None = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def launch_chromium(playwright: Playwright, executable: str | None = None) -> Browser:
    """The system Chromium (`executable`, default `CHROMIUM`) launched headless; the caller closes it.

    Raises RuntimeError when no Chromium is installed, naming the package to install."""
    path = executable or CHROMIUM
    if path is None:
        raise RuntimeError("Chromium is not installed: `apt-get install -y chromium` (tests/support/system_deps.sh)")
    return playwright.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS))

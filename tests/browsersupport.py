"""Real Chromium for the browser tests: Debian's package driven by Playwright's Python
package (never ``playwright install``). Without it the tests skip, unless
USERTIDE_REQUIRE_BROWSER=1 (CI), when they fail."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Flags for headless Chromium in a sandboxed test machine (see real-components.md).
BASE_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def unavailable(reason: str) -> None:
    if os.environ.get("USERTIDE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"USERTIDE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def chromium(args: Sequence[str] = BASE_ARGS) -> Iterator[Any]:
    """A launched Chromium browser (Playwright's sync API), closed afterwards."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=list(args))
        yield browser
        browser.close()
    finally:
        pw.stop()

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


class BrowserTab:
    """A browser context and page signed in as an admin when asked; dialogs and script
    errors are recorded (the dashboard's browser tests share it)."""

    def __init__(self, browser: Any, base: str, admin_key: str, timeout_ms: int) -> None:
        self.base = base
        self.admin_key = admin_key
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(timeout_ms)
        self.timeout_ms = timeout_ms
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # The browser logs every 4xx answer a test provokes (401 after signing out, 404
        # from endpoints not built yet); anything else, CSP refusals included, counts.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def wait_text(self, selector: str, expected: str, timeout_ms: int | None = None) -> None:
        """Until the element's text contains ``expected`` (the pages refill themselves)."""
        from playwright.sync_api import expect

        timeout = self.timeout_ms if timeout_ms is None else timeout_ms
        expect(self.page.locator(selector)).to_contain_text(expected, timeout=timeout)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def sign_in(self, path: str = "/dashboard/") -> None:
        self.goto(path)
        assert "/dashboard/login" in self.page.url
        self.page.fill("#key", self.admin_key)
        self.page.click("#signin")
        self.page.wait_for_url(lambda url: "/dashboard/login" not in url)

"""The recommendations view in real Chromium, on a real server: click-through per
recommender, and a visitor's live list following their clicks without a reload.

Item ids and properties that would run as script if written as HTML are in the data:
any dialog or script error fails the test. Needs Debian's Chromium at /usr/bin/chromium;
without it the tests skip, unless USERTIDE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from browsersupport import BrowserTab, chromium
from livesupport import ADMIN_KEY, WRITE_KEY, make_settings
from usertide.server import BackgroundServer

pytestmark = pytest.mark.slow

TIMEOUT_MS = 10_000
HOSTILE_ITEM = "<img src=x onerror=alert('item')>"
HOSTILE_NAME = "<script>alert('name')</script>"
NOW = datetime.now(UTC).replace(microsecond=0)


def track(visitor: str, event: str, at: float, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track", "event": event, "anonymousId": visitor,
        "messageId": f"{visitor}-{event}-{at}-{properties.get('product_id', '')}",
        "timestamp": (NOW - timedelta(hours=2) + timedelta(seconds=at)).isoformat(),
        "properties": properties,
    }  # fmt: skip


def history() -> list[dict[str, Any]]:
    events = []
    for v in range(30):
        for k, item in enumerate(("shoe", "sock", HOSTILE_ITEM)):
            events.append(track(f"v{v}", "Product Viewed", v * 60 + k, product_id=item,
                                name=HOSTILE_NAME if item == HOSTILE_ITEM else item))  # fmt: skip
        for k, item in enumerate(("hat", "scarf")):
            events.append(track(f"w{v}", "Product Viewed", v * 60 + 20 + k, product_id=item))
    shown, clicked = "Recommendation Shown", "Recommendation Clicked"
    for n in range(4):  # blend: 4 answers shown, 1 clicked; sr: 2 shown, 2 clicked
        events.append(track("r", shown, 3_000 + n, rec_id=f"b{n}", recommender="blend"))
    events.append(track("r", clicked, 3_100, rec_id="b0", recommender="blend", item_id="x"))
    for n in range(2):
        events.append(track("r", shown, 3_200 + n, rec_id=f"s{n}", recommender="sr"))
        events.append(track("r", clicked, 3_300 + n, rec_id=f"s{n}", recommender="sr"))
    return events


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    srv = BackgroundServer(make_settings(Path(tmp_path_factory.mktemp("recs")) / "data"))
    srv.start()
    send(srv, history())
    yield srv
    srv.stop()


def send(server: BackgroundServer, events: list[dict[str, Any]]) -> None:
    r = httpx.post(f"{server.url}/v1/batch", json={"batch": events},
                   auth=httpx.BasicAuth(WRITE_KEY, ""))  # fmt: skip
    assert r.status_code == 200, r.text
    assert server.service.runtime.wait_for(server.service.committer.last_offset, 30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class Tab(BrowserTab):
    def __init__(self, browser: Any, base: str) -> None:
        super().__init__(browser, base, ADMIN_KEY, TIMEOUT_MS)


@pytest.fixture
def tab(browser: Any, server: BackgroundServer) -> Iterator[Tab]:
    t = Tab(browser, server.url)
    yield t
    t.context.close()
    assert t.dialogs == [], f"a page opened dialogs: {t.dialogs}"
    assert t.errors == [], f"script errors: {t.errors}"


def test_click_through_per_recommender_is_tabled_and_charted(tab: Tab) -> None:
    tab.sign_in("/dashboard/recommendations")
    tab.wait_text("#ctr-table tbody", "blend")
    rows = tab.page.locator("#ctr-table tbody tr").all_inner_texts()
    assert any(r.startswith("blend\t4\t1\t25") for r in rows), rows
    assert any(r.startswith("sr\t2\t2\t100") for r in rows), rows
    tab.page.wait_for_selector("#ctr-chart .main-svg")
    nav = tab.page.locator("header nav a[aria-current=page]")
    assert nav.inner_text() == "Recommendations"
    assert tab.page.locator("#recommender option").count() >= 5  # the served ones


def test_the_visitor_panel_follows_the_visitors_clicks(tab: Tab, server: BackgroundServer) -> None:
    send(server, [track("live", "Product Viewed", 5_000, product_id="shoe")])
    tab.sign_in("/dashboard/recommendations?visitor=live")
    tab.wait_text("#visitor-session", "shoe")
    tab.wait_text("#visitor-items tbody", "sock")
    # the visitor moves on; the panel follows within its refresh, no reload
    send(server, [track("live", "Product Viewed", 5_010, product_id="hat")])
    tab.wait_text("#visitor-session", "shoe → hat")
    first = tab.page.locator("#visitor-items tbody tr").first.inner_text()
    assert "scarf" in first
    # hostile ids and properties are text
    send(server, [track("live", "Product Viewed", 5_020, product_id="sock")])
    tab.wait_text("#visitor-items tbody", HOSTILE_ITEM)
    tab.wait_text("#visitor-items tbody", HOSTILE_NAME)
    tab.page.select_option("#recommender", "popular")
    tab.wait_text("#visitor-session", "popular")

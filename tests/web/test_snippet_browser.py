"""The browser snippet (``/usertide.js``) end to end: real Chromium, real server.

The test pages come from a small ``http.server`` on another port, so every request the
snippet makes to usertide is cross-origin (CORS must work). Needs Debian's Chromium at
/usr/bin/chromium; without it the tests skip, unless USERTIDE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from browsersupport import BASE_ARGS, chromium
from usertide.config import load_settings
from usertide.server import BackgroundServer, free_port

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = BASE_ARGS
ADMIN_KEY = "admin-test"
WRITE_KEY = "write-test"
SNIPPET = Path(__file__).parents[2] / "src" / "usertide" / "web" / "static" / "usertide.js"

Event = dict[str, Any]


# -- servers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def usertide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    settings = load_settings(
        {},
        data_dir=tmp_path_factory.mktemp("snippet-data"),
        admin_key=ADMIN_KEY,
        write_key=WRITE_KEY,
        port=free_port(),
        log_level="warning",
    )
    srv = BackgroundServer(settings)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(usertide: BackgroundServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=usertide.url, headers=headers, timeout=10) as client:
        yield client


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<script src="{host}/usertide.js" data-write-key="{key}" {attrs} async></script>
</head><body>
<main class="content">
  <h1>{title}</h1>
  <button id="buy" class="btn primary" type="button">  Buy
     now  </button>
  <nav><a class="nav-link" href="#top">Home</a><a class="nav-link" href="#pricing">Pricing</a></nav>
  <div class="cta" data-usertide-event="Signup CTA"><span>Join us</span></div>
  <form onsubmit="return false"><input id="pw" type="password" value="hunter2">
    <input class="go" type="submit" value="secret-value"></form>
  <button class="private" data-usertide-ignore>Do not track me</button>
  <button class="long" type="button">{long_text}</button>
</main>
</body></html>
"""


@pytest.fixture(scope="module")
def site(usertide: BackgroundServer) -> Iterator[str]:
    """A site on another origin. ``/p/<name>`` pages load the snippet (query string:
    ``attrs=`` extra script attributes); ``/blank.html`` does not."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.startswith("/p/"):
                query = parse_qs(parts.query)
                body = PAGE.format(
                    title=html.escape(parts.path[3:].title() or "Home"),
                    host=usertide.url,
                    key=WRITE_KEY,
                    attrs=query.get("attrs", [""])[0],
                    long_text="Lorem ipsum dolor sit amet. " * 10,
                )
            elif parts.path == "/blank.html":
                body = "<!doctype html><title>Blank</title><p>no snippet here</p>"
            else:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="snippet-site", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


# -- browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(CHROMIUM_ARGS) as launched:
        yield launched


class Tab:
    """A browser context with one page and a log of the requests it sent to usertide."""

    def __init__(self, browser: Any, ingest_url: str, init_script: str | None = None) -> None:
        self.context = browser.new_context()
        if init_script:
            self.context.add_init_script(init_script)
        self.batches: list[dict[str, Any]] = []
        self.context.on("request", self._on_request)
        self.errors: list[str] = []  # uncaught errors in any page: the snippet must not throw
        self.context.on("weberror", lambda error: self.errors.append(str(error.error)))
        self.ingest_url = ingest_url
        self.page = self.context.new_page()

    def _on_request(self, request: Any) -> None:
        if request.url == self.ingest_url:
            self.batches.append(
                {"type": request.resource_type, "body": json.loads(request.post_data or "{}")}
            )

    def open(self, url: str, **kwargs: Any) -> None:
        self.page.goto(url, **kwargs)
        self.page.wait_for_function("() => window.usertide && !Array.isArray(window.usertide)")

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def flush(self) -> None:
        """Send now instead of at the next 1 s tick (after a tick for route changes)."""
        self.js("() => new Promise((r) => setTimeout(r, 20)).then(() => usertide.flush())")

    def anonymous_id(self) -> str:
        anonymous_id: str = self.js("() => usertide.anonymousId()")
        return anonymous_id

    def storage(self) -> dict[str, str]:
        stored: dict[str, str] = self.js("() => ({...localStorage})")
        return stored

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab_factory(browser: Any, usertide: BackgroundServer) -> Iterator[Callable[..., Tab]]:
    tabs: list[Tab] = []

    def make(init_script: str | None = None) -> Tab:
        tab = Tab(browser, f"{usertide.url}/v1/batch", init_script)
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.close()
    assert [e for tab in tabs for e in tab.errors] == []


@pytest.fixture
def tab(tab_factory: Callable[..., Tab]) -> Tab:
    return tab_factory()


# -- reading back -----------------------------------------------------------------------


def events_of(admin: httpx.Client, anonymous_id: str) -> list[Event]:
    r = admin.get("/v1/events", params={"anonymous_id": anonymous_id, "limit": 1000})
    r.raise_for_status()
    events: list[Event] = r.json()["events"]
    return events


def wait_events(
    admin: httpx.Client,
    anonymous_id: str,
    until: Callable[[list[Event]], bool],
    timeout: float = 8.0,
    tab: Tab | None = None,
) -> list[Event]:
    """Poll the server until ``until(events)`` holds (the snippet flushes every second).

    Pass ``tab`` when the test has route handlers: Playwright's sync API runs them only
    while the test is inside a Playwright call, so the wait must be one."""
    deadline = time.monotonic() + timeout
    while True:
        events = events_of(admin, anonymous_id)
        if until(events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; the server has {json.dumps(events, indent=1)}")
        if tab is None:
            time.sleep(0.1)
        else:
            tab.page.wait_for_timeout(100)


def pages(events: list[Event]) -> list[Event]:
    return [e for e in events if e["type"] == "page"]


def named(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e["type"] == "track" and e["name"] == name]


# -- tests ------------------------------------------------------------------------------


# Counts navigator.sendBeacon calls (Playwright does not report a beacon sent by a page
# that is unloading, so the test page keeps the count itself).
COUNT_BEACONS = """
const sendBeacon = Navigator.prototype.sendBeacon;
Navigator.prototype.sendBeacon = function (url, data) {
    localStorage.setItem("test_beacons", String(Number(localStorage.getItem("test_beacons")) + 1));
    return sendBeacon.call(this, url, data);
};
"""


def test_snippet_is_served_with_cors(usertide: BackgroundServer) -> None:
    r = httpx.get(f"{usertide.url}/usertide.js", headers={"Origin": "http://elsewhere.test"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.content == SNIPPET.read_bytes()


def test_page_view_on_load(tab: Tab, site: str, admin: httpx.Client) -> None:
    referrer = f"{site}/blank.html"
    tab.open(f"{site}/p/home?utm_source=test", referer=referrer)
    anonymous_id = tab.anonymous_id()
    events = wait_events(admin, anonymous_id, lambda ev: len(pages(ev)) >= 1)
    [view] = pages(events)
    ctx = view["context"]
    assert ctx["page_path"] == "/p/home"
    assert ctx["page_url"] == f"{site}/p/home?utm_source=test"
    assert ctx["page_title"] == "Home"
    assert ctx["page_referrer"] == referrer
    assert "Chrome" in ctx["user_agent"]
    assert ctx["library_name"] == "usertide.js"
    assert view["anonymous_id"] == anonymous_id
    assert view.get("user_id") is None
    assert view["session_id"] == tab.js("() => usertide.sessionId()")
    assert view["properties"]["search"] == "?utm_source=test"
    # The ids persist in localStorage; a reload keeps the visitor and the session.
    stored = tab.storage()
    assert stored["usertide_aid"] == anonymous_id
    tab.open(f"{site}/p/home?utm_source=test")
    assert tab.anonymous_id() == anonymous_id
    tab.flush()
    events = wait_events(admin, anonymous_id, lambda ev: len(pages(ev)) >= 2)
    assert len({e["session_id"] for e in events}) == 1
    # 31 minutes without activity: the next event starts a new session.
    tab.js(
        """() => {
            localStorage.setItem("usertide_last", String(Date.now() - 31 * 60 * 1000));
            usertide.track("Came Back");
        }"""
    )
    tab.flush()
    events = wait_events(admin, anonymous_id, lambda ev: len(named(ev, "Came Back")) == 1)
    [back] = named(events, "Came Back")
    assert back["session_id"] not in {e["session_id"] for e in pages(events)}
    assert back["session_id"] == tab.js("() => usertide.sessionId()")
    # Every batch went out as a cross-origin fetch, with the key in the body.
    assert {b["type"] for b in tab.batches} == {"fetch"}
    assert all(b["body"]["writeKey"] == WRITE_KEY for b in tab.batches)


def test_clicks_are_autocaptured(tab: Tab, site: str, admin: httpx.Client) -> None:
    tab.open(f"{site}/p/shop")
    anonymous_id = tab.anonymous_id()
    tab.page.click("#buy")
    tab.page.click("a.nav-link >> nth=1")  # a hash link: also a new page view
    tab.page.click("div.cta span")
    tab.page.click("#pw")  # a password field is not clickable: no event
    tab.page.click("input.go")
    tab.page.click("button.private")  # data-usertide-ignore
    tab.page.click("button.long")
    tab.js("() => usertide.track('Circular', {self: window})")  # not JSON: dropped, no error
    tab.flush()
    events = wait_events(
        admin, anonymous_id, lambda ev: len(named(ev, "$click")) >= 4 and len(pages(ev)) >= 2
    )
    buy, link, submit, long = named(events, "$click")
    assert buy["properties"] == {"tag": "button", "text": "Buy now", "selector": "#buy"}
    assert link["properties"] == {
        "tag": "a",
        "text": "Pricing",
        "selector": "main.content > nav > a.nav-link:nth-of-type(2)",
        "href": f"{site}/p/shop#pricing",
    }
    # Never the value of an input (it might be a password or a search term).
    assert submit["properties"] == {
        "tag": "input",
        "selector": "main.content > form > input.go:nth-of-type(2)",
    }
    assert "secret-value" not in json.dumps(events)
    assert "hunter2" not in json.dumps(events)
    [cta] = named(events, "Signup CTA")
    assert cta["properties"]["text"] == "Join us"
    assert cta["properties"]["selector"] == "main.content > div.cta"
    assert [e["context"]["page_url"] for e in pages(events)] == [
        f"{site}/p/shop",
        f"{site}/p/shop#pricing",
    ]
    assert long["properties"]["text"] == ("Lorem ipsum dolor sit amet. " * 10)[:100].strip()
    assert len(events) == 7  # 2 page views, 4 clicks, the CTA; nothing for the others


def test_spa_navigation_sends_page_views(tab: Tab, site: str, admin: httpx.Client) -> None:
    tab.open(f"{site}/p/app")
    anonymous_id = tab.anonymous_id()
    tab.js(
        """() => {
            history.pushState({}, "", "/app/settings?tab=profile");
            document.title = "Settings";
            history.replaceState({step: 2}, "", location.href);  // same URL: no page view
        }"""
    )
    tab.flush()
    events = wait_events(admin, anonymous_id, lambda ev: len(pages(ev)) >= 2)
    first, second = pages(events)
    assert first["context"]["page_path"] == "/p/app"
    assert second["context"]["page_path"] == "/app/settings"
    assert second["context"]["page_title"] == "Settings"
    assert second["context"]["page_referrer"] == f"{site}/p/app"
    assert second["properties"]["search"] == "?tab=profile"
    assert second["session_id"] == first["session_id"]
    tab.page.go_back()  # popstate
    tab.flush()
    events = wait_events(admin, anonymous_id, lambda ev: len(pages(ev)) >= 3)
    assert [e["context"]["page_path"] for e in pages(events)] == [
        "/p/app",
        "/app/settings",
        "/p/app",
    ]
    tab.flush()
    assert len(pages(events_of(admin, anonymous_id))) == 3


def test_identify_merges_anonymous_activity(
    tab_factory: Callable[..., Tab],
    site: str,
    admin: httpx.Client,
    usertide: BackgroundServer,
) -> None:
    tab = tab_factory()
    tab.open(f"{site}/p/pricing")
    anonymous_id = tab.anonymous_id()
    tab.js("() => usertide.track('Viewed Plans', {plans: 3})")
    # A second page of the same site queues identify before the snippet has loaded.
    later = tab.context.new_page()
    later.add_init_script(
        "window.usertide = window.usertide || [];"
        "usertide.push(['identify', 'jane', {plan: 'pro', email: 'jane@example.com'}]);"
    )
    later.goto(f"{site}/p/account")
    later.wait_for_function("() => window.usertide && window.usertide.userId() === 'jane'")
    assert later.evaluate("() => usertide.anonymousId()") == anonymous_id
    later.evaluate("() => usertide.track('Upgraded', {to: 'pro'})")
    later.evaluate("() => usertide.flush()")
    events = wait_events(admin, anonymous_id, lambda ev: len(named(ev, "Upgraded")) == 1)
    [identify] = [e for e in events if e["type"] == "identify"]
    assert identify["user_id"] == "jane"
    assert identify["traits"] == {"plan": "pro", "email": "jane@example.com"}
    # The identify ran before the automatic page view, so the page view is jane's.
    assert [e.get("user_id") for e in pages(events)] == [None, "jane"]
    assert named(events, "Upgraded")[0]["user_id"] == "jane"
    assert tab.storage()["usertide_uid"] == "jane"

    assert usertide.service.runtime.wait_for(usertide.service.committer.last_offset)
    r = admin.get("/v1/users/jane")
    assert r.status_code == 200, r.text
    user = r.json()
    assert user["user_id"] == "jane"
    profile = user["profile"]
    assert anonymous_id in profile["anonymous_ids"]
    assert profile["traits"]["plan"] == "pro"
    counts = profile["event_counts"]
    # The anonymous page view and track call were merged into jane's profile.
    assert counts.get("Viewed Plans") == 1, counts
    assert counts.get("Upgraded") == 1, counts
    assert profile["events"] == len(events)
    later.close()

    # reset(): a new visitor, the user forgotten.
    tab.js("() => usertide.reset()")
    assert tab.js("() => usertide.userId()") is None
    assert tab.anonymous_id() != anonymous_id
    assert "usertide_uid" not in tab.storage()


def test_events_sent_before_leaving_arrive(
    tab_factory: Callable[..., Tab], site: str, admin: httpx.Client
) -> None:
    tab = tab_factory(COUNT_BEACONS)
    tab.open(f"{site}/p/cart")
    anonymous_id = tab.anonymous_id()
    tab.flush()
    wait_events(admin, anonymous_id, lambda ev: len(pages(ev)) == 1)
    # Well within the 1 s flush interval: only pagehide/visibilitychange can send it.
    tab.js(
        """() => {
            usertide.track("Checkout Started", {total: 42});
            location.href = "/blank.html";
        }"""
    )
    tab.page.wait_for_url(f"{site}/blank.html")
    events = wait_events(admin, anonymous_id, lambda ev: len(named(ev, "Checkout Started")) == 1)
    assert named(events, "Checkout Started")[0]["properties"] == {"total": 42}
    # It went by navigator.sendBeacon, not by a fetch.
    assert tab.storage().get("test_beacons") == "1"
    assert [len(b["body"]["batch"]) for b in tab.batches] == [1]  # the page view
    assert not [k for k in tab.storage() if k.startswith("usertide_q_")]


def test_unsent_events_survive_navigation(
    tab_factory: Callable[..., Tab], site: str, admin: httpx.Client
) -> None:
    # No sendBeacon and no crypto.randomUUID (the fallbacks are used).
    tab = tab_factory(
        "Object.defineProperty(Navigator.prototype, 'sendBeacon', {value: () => false});"
        "delete Crypto.prototype.randomUUID;"
    )
    tab.open(f"{site}/p/one")
    anonymous_id = tab.anonymous_id()
    assert anonymous_id[14] == "4"  # a version 4 uuid from the fallback
    tab.js("() => { usertide.track('Left Quickly'); location.href = '/blank.html'; }")
    tab.page.wait_for_url(f"{site}/blank.html")
    mirrored = [k for k in tab.storage() if k.startswith("usertide_q_")]
    assert len(mirrored) == 1
    assert "Left Quickly" in tab.storage()[mirrored[0]]
    # The next page of the site sends what the last one could not.
    tab.open(f"{site}/p/two")
    tab.flush()
    events = wait_events(
        admin,
        anonymous_id,
        lambda ev: len(named(ev, "Left Quickly")) == 1 and len(pages(ev)) == 2,
    )
    assert [e["context"]["page_path"] for e in pages(events)] == ["/p/one", "/p/two"]
    tab.flush()
    assert not [k for k in tab.storage() if k.startswith("usertide_q_")]


def test_opt_out_stops_everything(
    tab_factory: Callable[..., Tab], site: str, admin: httpx.Client
) -> None:
    tab = tab_factory(COUNT_BEACONS)
    tab.open(f"{site}/p/home")
    anonymous_id = tab.anonymous_id()
    tab.flush()
    wait_events(admin, anonymous_id, lambda ev: len(pages(ev)) == 1)
    tab.js("() => usertide.optOut()")
    sent = len(tab.batches)
    tab.js("() => { usertide.track('Hidden'); usertide.identify('ghost', {a: 1}); }")
    tab.page.click("#buy")
    tab.js("() => { history.pushState({}, '', '/p/elsewhere'); }")
    tab.flush()
    assert tab.storage() == {"usertide_optout": "1"}  # nothing stored but the choice
    tab.open(f"{site}/p/again")  # remembered across page loads
    tab.page.click("#buy")
    tab.flush()
    tab.page.goto(f"{site}/blank.html")  # pagehide: no beacon either
    assert len(tab.batches) == sent
    assert len(events_of(admin, anonymous_id)) == 1
    assert tab.storage() == {"usertide_optout": "1"}

    tab.open(f"{site}/p/back")
    assert tab.js("() => usertide.anonymousId()") is None
    tab.js("() => usertide.optIn()")  # a new visitor, with a page view for this page
    new_id = tab.anonymous_id()
    assert new_id != anonymous_id
    tab.flush()
    events = wait_events(admin, new_id, lambda ev: len(pages(ev)) == 1)
    assert events[0]["context"]["page_path"] == "/p/back"


def test_failed_flushes_are_retried_and_4xx_dropped(
    tab: Tab, site: str, admin: httpx.Client
) -> None:
    seen: list[int] = []

    def flaky(route: Any) -> None:
        """The first batch gets a 503, one with a 'Rejected' event a 400; the rest pass."""
        if seen and "Rejected" not in (route.request.post_data or ""):
            route.fallback()
            return
        seen.append(400 if seen else 503)
        route.fulfill(
            status=seen[-1],
            headers={"Access-Control-Allow-Origin": "*"},
            content_type="application/json",
            body='{"success": false}',
        )

    tab.context.route(tab.ingest_url, flaky)
    tab.open(f"{site}/p/home")
    anonymous_id = tab.anonymous_id()
    # The page view gets a 503 and is retried after a backoff of about a second.
    tab.flush()
    assert seen == [503]
    assert [k for k in tab.storage() if k.startswith("usertide_q_")]  # kept until sent
    events = wait_events(admin, anonymous_id, lambda ev: len(pages(ev)) == 1, tab=tab)
    assert seen == [503]
    # A 400 is final: the batch is dropped, not retried.
    tab.js("() => usertide.track('Rejected')")
    tab.flush()
    assert seen == [503, 400]
    tab.js("() => usertide.track('Accepted')")
    tab.flush()
    events = wait_events(admin, anonymous_id, lambda ev: len(named(ev, "Accepted")) == 1, tab=tab)
    assert not named(events, "Rejected")
    assert not [k for k in tab.storage() if k.startswith("usertide_q_")]


def test_a_batch_the_server_keeps_refusing_is_dropped(
    tab: Tab, site: str, admin: httpx.Client
) -> None:
    refused: list[str] = []

    def refuse_poison(route: Any) -> None:
        if "Poison" not in (route.request.post_data or ""):
            route.fallback()
            return
        refused.append(route.request.url)
        route.fulfill(status=503, headers={"Access-Control-Allow-Origin": "*"}, body="{}")

    tab.context.route(tab.ingest_url, refuse_poison)
    tab.page.clock.install()  # the backoff grows to a minute: run the timers faster
    tab.open(f"{site}/p/home")
    anonymous_id = tab.anonymous_id()
    tab.js("() => usertide.flush()")  # the page view
    tab.js("() => usertide.track('Poison')")

    def mirrored() -> list[str]:
        return [k for k in tab.storage() if k.startswith("usertide_q_")]

    deadline = time.monotonic() + 10
    while (len(refused) < 10 or mirrored()) and time.monotonic() < deadline:
        tab.page.clock.run_for(61_000)  # past the longest backoff
        tab.page.wait_for_timeout(20)
    assert len(refused) == 10
    assert not mirrored()  # given up
    tab.page.clock.run_for(61_000)
    tab.js("() => { usertide.track('Healthy'); return usertide.flush(); }")
    events = wait_events(admin, anonymous_id, lambda ev: len(named(ev, "Healthy")) == 1, tab=tab)
    assert len(refused) == 10
    assert not named(events, "Poison")


def test_cookies_when_local_storage_is_blocked(
    tab_factory: Callable[..., Tab], site: str, admin: httpx.Client
) -> None:
    tab = tab_factory(
        "Object.defineProperty(window, 'localStorage', {get() {"
        " throw new DOMException('blocked', 'SecurityError'); }});"
    )
    tab.open(f"{site}/p/home")
    anonymous_id = tab.anonymous_id()
    cookies = {c["name"]: c["value"] for c in tab.context.cookies()}
    assert cookies["usertide_aid"] == anonymous_id
    assert "usertide_sid" in cookies
    tab.open(f"{site}/p/next")
    assert tab.anonymous_id() == anonymous_id
    tab.flush()
    events = wait_events(admin, anonymous_id, lambda ev: len(pages(ev)) == 2)
    assert len({e["session_id"] for e in events}) == 1


DNT = "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'});"
GPC = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"


@pytest.mark.parametrize("signal", [DNT, GPC], ids=["do-not-track", "global-privacy-control"])
def test_do_not_track_is_respected(tab_factory: Callable[..., Tab], site: str, signal: str) -> None:
    tab = tab_factory(signal + COUNT_BEACONS)
    tab.open(f"{site}/p/home")
    assert tab.js("() => usertide.anonymousId()") is None
    tab.js("() => { usertide.track('Nope'); usertide.identify('jane'); usertide.optIn(); }")
    tab.page.click("#buy")
    tab.flush()
    tab.page.goto(f"{site}/blank.html")
    assert tab.batches == []
    assert tab.storage() == {}


def test_do_not_track_can_be_overridden(
    tab_factory: Callable[..., Tab], site: str, admin: httpx.Client
) -> None:
    tab = tab_factory(DNT)
    tab.open(f"{site}/p/home?attrs=data-respect-dnt%3D%22false%22%20data-autocapture%3Dfalse")
    anonymous_id = tab.anonymous_id()
    tab.page.click("#buy")  # autocapture is off on this page
    tab.js("() => usertide.track('Allowed')")
    tab.flush()
    events = wait_events(admin, anonymous_id, lambda ev: len(ev) == 2)
    assert [e["type"] for e in events] == ["page", "track"]
    assert events[1]["name"] == "Allowed"


def test_recommendations_for_this_visitor_with_impressions_and_clicks(
    tab: Tab, site: str, admin: httpx.Client, usertide: BackgroundServer
) -> None:
    # Other shoppers went shoe -> sock -> lace; this visitor's clicks go through the
    # snippet and the next request already sees them (recommend() sends them first).
    others = [
        {"type": "track", "event": "Product Viewed", "anonymousId": f"o{v}",
         "messageId": f"o{v}-{item}", "properties": {"product_id": item}}
        for v in range(20) for item in ("shoe", "sock", "lace")
    ]  # fmt: skip
    auth = httpx.BasicAuth(WRITE_KEY, "")
    r = httpx.post(f"{usertide.url}/v1/batch", json={"batch": others}, auth=auth)
    assert r.status_code == 200
    tab.open(f"{site}/p/shop")
    tab.js("() => { usertide.track('Product Viewed', {product_id: 'shoe'});"
           " usertide.track('Product Viewed', {product_id: 'sock'}); }")  # fmt: skip
    answer = tab.js("() => usertide.recommend({n: 2})")
    assert answer["rec_id"].startswith("rec_") and answer["recommender"] == "blend"
    assert answer["items"][0]["item_id"] == "lace"
    tab.js("(a) => { usertide.shown(a); usertide.clicked(a, 'lace'); return usertide.flush(); }",
           answer)  # fmt: skip
    events = wait_events(
        admin, tab.anonymous_id(), lambda ev: len(named(ev, "Recommendation Clicked")) == 1
    )
    [seen] = named(events, "Recommendation Shown")
    [click] = named(events, "Recommendation Clicked")
    assert seen["properties"]["rec_id"] == answer["rec_id"] == click["properties"]["rec_id"]
    assert seen["properties"]["item_ids"] == [i["item_id"] for i in answer["items"]]
    assert click["properties"] == {"rec_id": answer["rec_id"], "recommender": "blend",
                                   "item_id": "lace", "position": 1}  # fmt: skip
    assert tab.js("() => usertide.optOut() || usertide.recommend()")["items"] == []

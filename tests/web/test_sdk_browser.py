"""The browser SDKs people already use, unchanged, delivering to usertide: real Chromium.

posthog-js and Segment's analytics-next are installed at their pinned versions from npm
into a cache outside the repository (``tests/sdkcache.py``) and served, with the test
pages, by a small ``http.server`` on another origin than usertide, as a site would serve
them. Each page sets the SDK up as its documentation tells a new user to, with only the
host pointed at usertide, and then does what a visitor does: views the page, clicks,
adds to the cart, signs in and leaves. The events are then read back with the admin API.

Every request the browser makes to usertide is recorded on the server side, CORS
preflights and beacons sent by a page that is unloading included (Playwright reports
neither), and listed in every assertion message with its method, path, content type,
body and status. Requests to any host other than 127.0.0.1 fail in the browser's
resolver (``--host-resolver-rules``), so an SDK that quietly fetches from its vendor's
CDN shows up as a failed request rather than working by accident.

Needs Debian's Chromium at /usr/bin/chromium and npm; without them the tests skip,
unless USERTIDE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from browsersupport import BASE_ARGS, chromium, unavailable
from sdkcache import NpmUnavailable, npm_packages
from usertide.config import load_settings
from usertide.server import BackgroundServer, free_port

pytestmark = pytest.mark.slow

POSTHOG_JS = "1.449.2"
ANALYTICS_NEXT = "1.84.3"
PINNED = {"posthog-js": POSTHOG_JS, "@segment/analytics-next": ANALYTICS_NEXT}

# An ordinary desktop Chrome: posthog-js drops events from user agents that look like
# bots or headless browsers, and from browsers with navigator.webdriver set.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
CHROMIUM_ARGS = [
    *BASE_ARGS,
    f"--user-agent={USER_AGENT}",
    "--disable-blink-features=AutomationControlled",
    # Only 127.0.0.1 is reachable: a request to a vendor's CDN or API fails visibly.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
ADMIN_KEY = "admin-test"
WRITE_KEY = "write-test"
USER_ID = "jane"

Event = dict[str, Any]


# -- what the browser sent to usertide --------------------------------------------------


@dataclass
class Exchange:
    """One HTTP request usertide received, and its answer."""

    at: float
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def payload(self) -> Any:
        """The body as the SDK meant it: ungzipped, out of a form's ``data=``, unbase64'd,
        parsed as JSON; ``None`` when it is none of these."""
        data = self.body
        try:
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            if data.startswith(b"data="):
                data = parse_qs(data.decode("ascii"))["data"][0].encode()
            try:
                return json.loads(data)
            except ValueError:
                return json.loads(base64.b64decode(data, validate=True))
        except (OSError, EOFError, ValueError, KeyError, zlib.error, UnicodeDecodeError):
            return None

    def encoding(self) -> str:
        """How the body travels: gzip, form-encoded base64, plain JSON..."""
        data = self.body
        if not data:
            return "no body"
        if data[:2] == b"\x1f\x8b":
            return "gzip"
        if data.startswith(b"data="):
            inner = parse_qs(data.decode("ascii", "replace")).get("data", [""])[0]
            return "form data=JSON" if inner[:1] in "{[" else "form data=base64"
        return "JSON" if data.lstrip()[:1] in b"{[" else "other"

    def events(self) -> list[str]:
        """The events in the body: PostHog's event names, Segment's type (and name)."""
        payload = self.payload()
        if isinstance(payload, dict):
            items = payload.get("batch", [payload])
        else:
            items = payload if isinstance(payload, list) else []
        names = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if "event" in item and "type" not in item:
                names.append(str(item["event"]))
            elif "type" in item:
                name = item.get("event") or item.get("name")
                names.append(f"{item['type']}:{name}" if name else str(item["type"]))
        return names

    def describe(self) -> str:
        auth = self.headers.get("authorization", "").split(" ")[0]
        mode = self.headers.get("sec-fetch-mode", "")
        events = self.events()
        if events:
            shape = f"{self.encoding()} [{', '.join(events)}]"
        elif self.method == "OPTIONS":
            shape = "preflight for " + self.headers.get("access-control-request-headers", "")
        elif isinstance(self.payload(), dict):
            shape = f"{self.encoding()} {{{', '.join(self.payload())}}}"
        else:
            shape = self.encoding() + (f" {self.body[:60]!r}" if self.body else "")
        answer = self.response[:100].decode("utf-8", "replace")
        return (
            f"{self.method} {self.target[:120]} | {self.content_type or '-'}"
            f"{' | ' + auth if auth else ''} | {mode or '-'} | {shape[:160]}"
            f" -> {self.status} {answer}"
        )


class Recorder:
    """ASGI middleware around usertide's app: keeps every HTTP exchange but the test's
    own (the admin API, read with httpx)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("user-agent", "").startswith("python-httpx/"):
            await self.app(scope, receive, send)
            return
        exchange = Exchange(
            at=time.monotonic(),
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
        )
        self.exchanges.append(exchange)
        # The whole body first (the app may answer without reading it), then replayed.
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            exchange.body += message.get("body", b"")
            if not message.get("more_body", False):
                break

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        async def keep(message: Any) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.response_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                exchange.response += message.get("body", b"")
            await send(message)

        await self.app(scope, replay, keep)


# -- servers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_dir() -> Path:
    try:
        return npm_packages(PINNED)
    except NpmUnavailable as exc:
        unavailable(f"the pinned SDKs cannot be installed from npm: {exc}")
        raise


@dataclass
class Usertide:
    server: BackgroundServer
    recorder: Recorder
    admin: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def usertide(tmp_path: Path) -> Iterator[Usertide]:
    """A fresh server per test: its store, failed events and request log are the test's."""
    settings = load_settings(
        {},
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        write_key=WRITE_KEY,
        port=free_port(),
        log_level="warning",
    )
    srv = BackgroundServer(settings)
    recorder = Recorder(srv.server.config.app)
    srv.server.config.app = recorder
    srv.start()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=10) as admin:
        yield Usertide(srv, recorder, admin)
    srv.stop()


BUNDLES = "/analytics-next/bundles/"
SEGMENT_UMD = "/node_modules/@segment/analytics-next/dist/umd/"


class Site:
    """The shop's own origin: its pages and the SDKs' files from the npm cache (with
    analytics-next's chunks where the SDK looks for them, under ``{cdn}/analytics-next/
    bundles/``)."""

    def __init__(self, sdk_dir: Path) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(sdk_dir), **kwargs)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path.startswith(BUNDLES):  # analytics-next's webpack chunks
                    self.path = SEGMENT_UMD + path.removeprefix(BUNDLES)
                    path = self.path
                if path.startswith("/node_modules/"):
                    super().do_GET()
                    return
                if path == "/favicon.ico":  # (Chromium asks; a 404 would log a console error)
                    self.send_response(204)
                    self.end_headers()
                    return
                if path not in pages:
                    self.send_error(404)
                    return
                data = pages[path].encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_HEAD(self) -> None:
                self.send_error(405)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.pages["/blank.html"] = "<!doctype html><title>Elsewhere</title><p>no tracking"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="sdk-site")
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def site(sdk_dir: Path) -> Iterator[Site]:
    served = Site(sdk_dir)
    yield served
    served.close()


# -- browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(CHROMIUM_ARGS) as launched:
        yield launched


# Notes, in the site's localStorage (it survives the page), how the page sent each
# request to usertide: fetch (with keepalive or not) or navigator.sendBeacon.
RECORD_TRANSPORT = """
(() => {
    const note = (entry) => {
        const all = JSON.parse(localStorage.getItem("test_transport") || "[]");
        all.push(entry);
        localStorage.setItem("test_transport", JSON.stringify(all));
    };
    const sendBeacon = Navigator.prototype.sendBeacon;
    Navigator.prototype.sendBeacon = function (url, data) {
        const sent = sendBeacon.call(this, url, data);
        note({api: "sendBeacon", url: String(url), queued: sent, hidden: document.hidden});
        return sent;
    };
    const fetch = window.fetch;
    window.fetch = function (input, init) {
        const url = typeof input === "string" ? input : String(input.url || input);
        note({api: "fetch", url, keepalive: Boolean(init && init.keepalive)});
        return fetch.apply(this, arguments);
    };
})();
"""


class Tab:
    """One browser context and page, with the browser's view of its requests."""

    def __init__(self, browser: Any, usertide: Usertide, site: Site) -> None:
        self.usertide = usertide
        self.site = site
        self.context = browser.new_context()
        self.context.add_init_script(RECORD_TRANSPORT)
        self.seen: dict[Any, str] = {}  # requests to usertide as the browser reports them
        self.answers: dict[Any, str] = {}  # their status, or why there was none
        self.failed: list[str] = []  # requests that got no answer, and why
        self.elsewhere: list[str] = []  # requests to other hosts than the site/usertide
        self.site_requests: list[str] = []  # requests to the site
        self.errors: list[str] = []  # uncaught errors in a page
        self.console: list[str] = []  # console errors and warnings
        self.context.on("request", self._on_request)
        self.context.on("requestfailed", self._on_failed)
        self.context.on("response", self._on_response)
        self.context.on("weberror", lambda error: self.errors.append(str(error.error)))
        self.page = self.context.new_page()
        self.page.on("console", self._on_console)

    def _ours(self, url: str) -> bool:
        return url.startswith((self.usertide.url + "/", self.site.url + "/"))

    def _on_request(self, request: Any) -> None:
        if request.url.startswith(self.usertide.url + "/"):
            target = request.url.removeprefix(self.usertide.url)
            content_type = request.headers.get("content-type", "-")
            self.seen[request] = f"{request.resource_type} {request.method} {target} {content_type}"
        elif request.url.startswith(self.site.url + "/"):
            self.site_requests.append(f"{request.resource_type} {request.method} {request.url}")
        elif not self._ours(request.url) and not request.url.startswith(("about:", "data:")):
            self.elsewhere.append(f"{request.resource_type} {request.method} {request.url}")

    def _on_response(self, response: Any) -> None:
        self.answers[response.request] = str(response.status)

    def _on_failed(self, request: Any) -> None:
        self.failed.append(f"{request.method} {request.url} {request.failure}")
        self.answers.setdefault(request, str(request.failure))

    def _on_console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text[:300]}")

    def open(self, path: str, ready: str) -> None:
        self.page.goto(self.site.url + path)
        self.wait_ready(ready)

    def wait_ready(self, ready: str) -> None:
        from playwright.sync_api import Error

        try:
            self.page.wait_for_function(ready, timeout=10_000)
        except Error as exc:
            report = self.report()
            raise AssertionError(f"the SDK never got ready ({ready}): {exc}\n{report}") from exc

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def leave(self) -> None:
        """Go to a page of the site without any tracking (pagehide, visibilitychange)."""
        self.page.goto(self.site.url + "/blank.html")

    def transport(self) -> list[dict[str, Any]]:
        """How the pages sent their requests to usertide (read on a page of the site)."""
        notes: list[dict[str, Any]] = json.loads(
            self.js("() => localStorage.getItem('test_transport') || '[]'")
        )
        return [n for n in notes if n["url"].startswith(self.usertide.url + "/")]

    def report(self) -> str:
        """Everything about this tab's traffic, for assertion messages and the log."""
        lines = [
            "requests usertide received (method target | type | auth | mode | body -> answer):"
        ]
        start = self.usertide.recorder.exchanges[0].at if self.usertide.recorder.exchanges else 0
        lines += [
            f"  {e.at - start:6.2f}s {e.describe()}" for e in self.usertide.recorder.exchanges
        ]
        lines.append("requests the browser reported to usertide:")
        lines += [f"  {seen} -> {self.answers.get(r, '?')}" for r, seen in self.seen.items()]
        try:
            notes = self.transport()
        except Exception as exc:  # the page is gone or elsewhere
            notes = [{"error": str(exc)[:200]}]
        lines.append("how the pages sent them (fetch/sendBeacon calls):")
        lines += [f"  {json.dumps(note)}" for note in notes]
        sections = [
            ("SDK chunks loaded from the site", [r for r in self.site_requests if BUNDLES in r]),
            ("requests that failed in the browser", self.failed),
            ("requests to other hosts", self.elsewhere),
            ("uncaught errors", self.errors),
            ("console errors and warnings", self.console),
        ]
        for title, entries in sections:
            if entries:
                lines.append(f"{title}:")
                lines += [f"  {entry}" for entry in entries]
        return "\n".join(lines)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, usertide: Usertide, site: Site) -> Iterator[Tab]:
    opened = Tab(browser, usertide, site)
    yield opened
    print(opened.report())  # shown with -rP, and with the failure of a test
    opened.close()


# -- reading back -----------------------------------------------------------------------


def stored(usertide: Usertide, anonymous_id: str) -> list[Event]:
    """This visitor's events: by its anonymous id and by the user id it signed in as."""
    found: dict[str, Event] = {}
    for params in ({"anonymous_id": anonymous_id}, {"user_id": USER_ID}):
        r = usertide.admin.get("/v1/events", params={**params, "limit": 1000})
        r.raise_for_status()
        for event in r.json()["events"]:
            found[event["id"]] = event
    return sorted(found.values(), key=lambda e: e["offset"])


def wait_stored(
    tab: Tab, anonymous_id: str, until: Callable[[list[Event]], bool], timeout: float = 10.0
) -> list[Event]:
    deadline = time.monotonic() + timeout
    while True:
        events = stored(tab.usertide, anonymous_id)
        if until(events):
            return events
        if time.monotonic() > deadline:
            summary = [(e["type"], e.get("name"), e.get("user_id")) for e in events]
            raise AssertionError(f"timed out; usertide has {summary}\n{tab.report()}")
        tab.page.wait_for_timeout(100)  # a Playwright call: its events keep coming


def wait_request(tab: Tab, what: str, test: Callable[[Exchange], bool], timeout: float = 5) -> None:
    """Wait until usertide has answered a request that passes ``test``."""
    deadline = time.monotonic() + timeout
    while not any(e.status is not None and test(e) for e in tab.usertide.recorder.exchanges):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{tab.report()}")
        tab.page.wait_for_timeout(50)


def kinds(events: list[Event]) -> list[str]:
    return [e["type"] if e["type"] != "track" else f"track:{e['name']}" for e in events]


def one(events: list[Event], kind: str, report: str) -> Event:
    matching = [e for e in events if kinds([e])[0] == kind]
    assert len(matching) == 1, f"{len(matching)} x {kind} in {kinds(events)}\n{report}"
    return matching[0]


def assert_clean_delivery(tab: Tab, refused_ok: Callable[[Exchange], bool] | None = None) -> None:
    """No request was refused (but those ``refused_ok`` justifies), none went elsewhere,
    no page threw, and usertide kept no failed event."""
    report = tab.report()
    exchanges = tab.usertide.recorder.exchanges
    refused = [
        e
        for e in exchanges
        if (e.status is None or e.status >= 400) and not (refused_ok and refused_ok(e))
    ]
    assert not refused, (
        "usertide refused:\n" + "\n".join(e.describe() for e in refused) + ("\n" + report)
    )
    assert not tab.elsewhere, report
    assert not tab.errors, report
    # A fetch still in flight when the page is left is cancelled (net::ERR_ABORTED; the
    # SDKs send it again); anything else (a CORS refusal is net::ERR_FAILED) is a fault.
    unexpected = [f for f in tab.failed if "ERR_ABORTED" not in f]
    assert not unexpected, report
    assert not [c for c in tab.console if "CORS" in c], report
    r = tab.usertide.admin.get("/v1/failed-events", params={"limit": 1000})
    r.raise_for_status()
    failed = r.json()
    assert failed["total"] == 0, json.dumps(failed, indent=1)[:4000] + "\n" + report


def preflights_passed(tab: Tab, paths: set[str]) -> None:
    """The SDK's non-simple requests (Basic auth) were preflighted and allowed."""
    report = tab.report()
    options = [e for e in tab.usertide.recorder.exchanges if e.method == "OPTIONS"]
    assert {e.path for e in options} >= paths, report
    for e in options:
        assert e.status == 200, report
        allowed = e.response_headers.get("access-control-allow-headers", "").lower()
        requested = e.headers.get("access-control-request-headers", "").lower()
        assert all(h.strip() in allowed for h in requested.split(",") if h.strip()), report
        assert e.response_headers.get("access-control-allow-origin") in ("*", tab.site.url)


# -- posthog-js -------------------------------------------------------------------------


POSTHOG_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script src="/node_modules/posthog-js/dist/{bundle}"></script>
<script>posthog.init({key}, {{api_host: {host}}})</script>
</head><body>
<main><h1>Shop</h1><button id="buy" class="btn" type="button">Add to cart</button></main>
</body></html>
"""


@pytest.mark.parametrize(
    "bundle",
    [
        pytest.param("array.full.js", id="full-bundle"),
        # loads extensions from {api_host}/static/ when the remote config enables them:
        # usertide's enables none, so nothing is fetched (a 404 there would fail this)
        pytest.param("array.js", id="lazy-bundle"),
    ],
)
def test_posthog_js(
    tab: Tab,
    site: Site,
    usertide: Usertide,
    bundle: str,
) -> None:
    path = f"/shop/posthog-{bundle.removesuffix('.js').replace('.', '-')}"
    site.pages[path] = POSTHOG_PAGE.format(
        bundle=bundle, key=json.dumps(WRITE_KEY), host=json.dumps(usertide.url)
    )
    tab.open(path, "() => window.posthog && window.posthog.__loaded")
    anonymous_id = tab.js("() => posthog.get_distinct_id()")
    session_id = tab.js("() => posthog.get_session_id()")
    assert tab.js("() => posthog.get_property('$device_id')") == anonymous_id
    # The first page view is sent at once.
    wait_stored(tab, anonymous_id, lambda ev: "page" in kinds(ev))
    tab.page.click("#buy")  # autocapture is on by default
    tab.js(
        """() => {
            posthog.capture('Added to cart', {sku: 'X1', price: 9.5});
            posthog.identify('jane', {email: 'jane@example.com', plan: 'pro'});
        }"""
    )
    # $identify is not queued: posthog-js sends it at once in a request of its own, after
    # compressing it asynchronously. A page left within those few milliseconds may never
    # send it (seen with posthog-js 1.449.2; nothing usertide can answer changes that),
    # so the visitor stays long enough for that request to start.
    wait_request(tab, "the $identify request", lambda e: "$identify" in e.events())
    tab.js("() => posthog.capture('Checkout Started', {items: 1})")
    # Within posthog-js's 3 s flush interval: what is queued goes out as the page is left,
    # with $pageleave, by sendBeacon.
    tab.leave()
    expected = [
        "page",
        "track:$autocapture",
        "track:Added to cart",
        "identify",
        "track:Checkout Started",
        "track:$pageleave",
    ]
    events = wait_stored(tab, anonymous_id, lambda ev: set(expected) <= set(kinds(ev)))
    tab.page.wait_for_timeout(300)  # a late duplicate would show up here
    events = stored(usertide, anonymous_id)
    report = tab.report()
    assert sorted(kinds(events)) == sorted(expected), report

    view = one(events, "page", report)
    assert view["anonymous_id"] == anonymous_id
    assert view.get("user_id") is None
    assert view["session_id"] == session_id
    assert view["context"]["page_url"] == f"{site.url}{path}"
    assert view["context"]["page_path"] == path
    assert view["context"]["library_name"] == "web"
    assert view["context"]["library_version"] == POSTHOG_JS
    assert view["context"]["user_agent"] == USER_AGENT
    click = one(events, "track:$autocapture", report)
    assert click["properties"]["$event_type"] == "click"
    assert "Add to cart" in json.dumps(click["properties"]), click["properties"]
    cart = one(events, "track:Added to cart", report)
    assert cart["properties"]["sku"] == "X1"
    assert cart["properties"]["price"] == 9.5
    assert cart["anonymous_id"] == anonymous_id
    assert cart.get("user_id") is None
    identify = one(events, "identify", report)
    assert identify["user_id"] == USER_ID
    assert identify["anonymous_id"] == anonymous_id
    assert identify["traits"] == {"email": "jane@example.com", "plan": "pro"}
    checkout = one(events, "track:Checkout Started", report)
    assert checkout["user_id"] == USER_ID
    assert checkout["properties"]["items"] == 1
    leave = one(events, "track:$pageleave", report)
    assert leave["user_id"] == USER_ID
    assert leave["session_id"] == session_id
    assert leave["context"]["page_path"] == path
    assert len({e["session_id"] for e in events}) == 1, report

    # $pageleave went by sendBeacon, as the page was hidden.
    beacons = [n for n in tab.transport() if n["api"] == "sendBeacon"]
    assert beacons, f"no sendBeacon: {tab.transport()}\n{report}"
    assert all(urlsplit(n["url"]).path in ("/e/", "/i/v0/e/") for n in beacons), beacons
    carried = [e for e in usertide.recorder.exchanges if "$pageleave" in e.events()]
    assert carried, report
    assert all(e.status == 200 for e in carried), report
    assert_clean_delivery(tab)


# -- Segment analytics-next ----------------------------------------------------------------


# The UMD build fixes the URL of its lazily loaded chunks (auto-track for trackLink and
# trackForm, ajs-destination, queryString, ...) when the script runs:
# ``{cdn}/analytics-next/bundles/``, where cdn is ``window.analytics._cdn`` (the snippet's
# custom-CDN setting) or else https://cdn.segment.com; ``cdnURL`` given to load() later
# does not move it. A site serving the SDK itself says where, as here, before the script.
SEGMENT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<script>window.analytics = {{_cdn: location.origin}};</script>
<script src="/node_modules/@segment/analytics-next/dist/umd/index.js"></script>
<script>
  window.analytics = AnalyticsNext.AnalyticsBrowser.load({settings}, {options});
  analytics.page();
</script>
</head><body><main><h1>{title}</h1><a id="reviews" href="#reviews">Reviews</a></main>
</body></html>
"""

BATCHING = {"strategy": "batching", "config": {"size": 10, "timeout": 1000}}


def segment_setup(
    usertide_url: str, source: str, delivery: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``AnalyticsBrowser.load(settings, options)`` for each way of pointing it at usertide.

    ``cdn``: ``cdnURL`` is usertide, which answers ``/v1/projects/{writeKey}/settings``
    with the Segment.io integration's apiHost pointing back at itself. ``inline``: the
    settings are in the page (with the SDK's remote metrics on, flushed every 500 ms, so
    that ``/v1/m`` is exercised) and the load options give apiHost and protocol."""
    settings: dict[str, Any] = {"writeKey": WRITE_KEY}
    segmentio: dict[str, Any] = {}
    if source == "cdn":
        settings["cdnURL"] = usertide_url
    else:
        settings["cdnSettings"] = {
            "integrations": {"Segment.io": {"apiKey": WRITE_KEY}},
            "metrics": {"sampleRate": 1, "flushTimer": 500},
        }
        segmentio["apiHost"] = urlsplit(usertide_url).netloc + "/v1"
        segmentio["protocol"] = "http"
    if delivery == "batching":
        segmentio["deliveryStrategy"] = BATCHING
    options = {"integrations": {"Segment.io": segmentio}} if segmentio else {}
    return settings, options


@pytest.mark.parametrize(
    ("source", "delivery"),
    [
        pytest.param("cdn", "default", id="cdn-settings-default-delivery"),
        pytest.param("inline", "batching", id="inline-settings-batching"),
        pytest.param("cdn", "batching", id="cdn-settings-batching"),
        pytest.param("inline", "default", id="inline-settings-default-delivery"),
    ],
)
def test_segment_analytics_next(
    tab: Tab, site: Site, usertide: Usertide, source: str, delivery: str
) -> None:
    path = f"/shop/segment-{source}-{delivery}"
    settings, options = segment_setup(usertide.url, source, delivery)
    site.pages[path] = SEGMENT_PAGE.format(
        title="Shop", settings=json.dumps(settings), options=json.dumps(options)
    )
    site.pages[path + "/cart"] = SEGMENT_PAGE.format(
        title="Cart", settings=json.dumps(settings), options=json.dumps(options)
    )
    ready = "() => window.analytics && window.analytics.instance && analytics.instance.initialized"
    tab.open(path, ready)
    anonymous_id = tab.js("async () => (await analytics.user()).anonymousId()")
    assert anonymous_id
    # Batching sends the page view after its 1 s timeout; the default at once.
    wait_stored(tab, anonymous_id, lambda ev: "page" in kinds(ev))
    # trackLink needs the auto-track chunk: it comes from the site, not Segment's CDN.
    tab.js("() => analytics.trackLink(document.querySelector('#reviews'), 'Read Reviews')")
    tab.page.click("#reviews")
    tab.js(
        """async () => {
            analytics.track('Order Completed', {revenue: 42, currency: 'EUR'});
            analytics.identify('jane', {email: 'jane@example.com'});
            analytics.track('Checkout Started', {items: 1});
        }"""
    )
    # On to another page of the site right away: batching sends its buffer as the page
    # hides (keepalive fetch); the default delivery's requests are already on their way,
    # and what is still in flight is kept in localStorage and sent by the next page.
    tab.js("() => { location.href = location.pathname + '/cart'; }")
    tab.page.wait_for_url(f"{site.url}{path}/cart")
    tab.wait_ready(ready)
    expected = [
        "page",
        "track:Read Reviews",
        "track:Order Completed",
        "identify",
        "track:Checkout Started",
        "page",
    ]
    events = wait_stored(tab, anonymous_id, lambda ev: sorted(kinds(ev)) == sorted(expected))
    if source == "inline":  # the SDK's own metrics, every 500 ms
        wait_request(tab, "POST /v1/m", lambda e: e.method == "POST" and e.path == "/v1/m")
    tab.leave()
    tab.page.wait_for_timeout(300 if delivery == "default" else 1300)  # late duplicates?
    events = stored(usertide, anonymous_id)
    report = tab.report()
    assert sorted(kinds(events)) == sorted(expected), report

    first, second = (e for e in events if e["type"] == "page")
    assert first["anonymous_id"] == anonymous_id
    assert first.get("user_id") is None
    assert first["context"]["page_path"] == path
    assert first["context"]["page_url"] == f"{site.url}{path}"
    assert first["context"]["page_title"] == "Shop"
    assert first["context"]["library_name"] == "analytics.js"
    assert ANALYTICS_NEXT in first["context"]["library_version"]
    assert first["context"]["user_agent"] == USER_AGENT
    # (No user id asserted for the events before identify: analytics-next fills in a
    # missing userId when it delivers an event, so one still queued then carries jane.)
    reviews = one(events, "track:Read Reviews", report)
    assert reviews["anonymous_id"] == anonymous_id
    assert reviews["context"]["page_url"] == f"{site.url}{path}"
    order = one(events, "track:Order Completed", report)
    assert order["properties"] == {"revenue": 42, "currency": "EUR"}
    assert order["anonymous_id"] == anonymous_id
    identify = one(events, "identify", report)
    assert identify["user_id"] == USER_ID
    assert identify["anonymous_id"] == anonymous_id
    assert identify["traits"] == {"email": "jane@example.com"}
    checkout = one(events, "track:Checkout Started", report)
    assert checkout["user_id"] == USER_ID
    assert checkout["properties"] == {"items": 1}
    assert second["user_id"] == USER_ID  # the next page knows who signed in
    assert second["anonymous_id"] == anonymous_id
    assert second["context"]["page_path"] == path + "/cart"
    assert second["context"]["page_title"] == "Cart"

    exchanges = usertide.recorder.exchanges
    posts = [e for e in exchanges if e.method == "POST"]
    ingest = [e for e in posts if e.path != "/v1/m"]
    if delivery == "batching":
        assert {e.path for e in ingest} == {"/v1/b"}, report
    else:
        assert {e.path for e in ingest} == {"/v1/p", "/v1/t", "/v1/i"}, report
    token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    for e in ingest:
        assert e.content_type == "text/plain", report
        assert e.headers.get("authorization") == f"Basic {token}", report
    preflights_passed(tab, {e.path for e in ingest})
    if source == "cdn":
        settings_fetches = [e for e in exchanges if e.path.endswith("/settings")]
        assert [(e.method, e.path) for e in settings_fetches] == [
            ("GET", f"/v1/projects/{WRITE_KEY}/settings")
        ] * 2, report  # one per page
    else:
        metrics = [e for e in posts if e.path == "/v1/m"]
        assert metrics, report
        assert all("series" in (e.payload() or {}) for e in metrics), report
    if delivery == "batching":
        keepalive = [n for n in tab.transport() if n["api"] == "fetch" and n["keepalive"]]
        assert keepalive, f"no keepalive fetch on pagehide: {tab.transport()}\n{report}"
    chunks = [r for r in tab.site_requests if BUNDLES in r]
    assert chunks, report
    assert all(r.startswith(f"script GET {site.url}{BUNDLES}auto-track.") for r in chunks), report
    assert_clean_delivery(tab)

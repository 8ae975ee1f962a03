"""The dashboard on a live server: pages behind the session, the overview API, assets,
the session cookie on the JSON API, and escaping in the templates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from livesupport import ADMIN_KEY, Live
from usertide.web import dashboard
from usertide.web.session import SESSION_COOKIE

PAGES = [
    "/dashboard/",
    "/dashboard/trends",
    "/dashboard/funnels",
    "/dashboard/users",
    "/dashboard/sessions",
    "/dashboard/users/jane",
    "/dashboard/alerts",
    "/dashboard/alerts/al_123",
]
HOSTILE_USER = "<script>alert(1)</script>"
HOSTILE_EVENT = "<img src=x onerror=alert(1)>"


def sign_in(client: httpx.Client) -> str:
    """Signs the client in; returns the session's CSRF token."""
    page = client.get("/dashboard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post("/dashboard/login", data={"key": ADMIN_KEY, "csrf": token[1]})
    assert r.status_code == 303, r.text
    home = client.get("/dashboard/")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', home.text)
    assert csrf is not None
    return csrf[1]


@pytest.fixture
def browser(live: Live) -> Iterator[httpx.Client]:
    """A client of the live server with cookies and no redirects followed, not signed in."""
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=10) as client:
        yield client


def send(live: Live, items: list[dict[str, object]]) -> None:
    r = live.client.post("/v1/batch", json={"batch": items}, headers=live.write)
    assert r.status_code == 200, r.text
    live.settle()


def test_root_leads_to_the_dashboard(browser: httpx.Client) -> None:
    r = browser.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/"


@pytest.mark.parametrize("path", PAGES)
def test_pages_refuse_to_load_without_a_session(browser: httpx.Client, path: str) -> None:
    r = browser.get(path)
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/login?next=" + quote(path, safe="/")
    assert "<main" not in r.text
    browser.cookies.set(SESSION_COOKIE, "forged-or-expired")
    assert browser.get(path).status_code == 303


def test_pages_load_with_a_session(browser: httpx.Client) -> None:
    sign_in(browser)
    for path in PAGES:
        r = browser.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-store"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        # every script is ours, from this origin: no inline code, no CDN
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", r.text, re.S)
        assert scripts and all(body.strip() == "" for _, body in scripts), path
        assert all(re.search(r'src="/dashboard/static/', attrs) for attrs, _ in scripts), path


def test_after_sign_in_the_page_asked_for_opens(browser: httpx.Client) -> None:
    r = browser.get("/dashboard/alerts?status=open")
    assert r.headers["location"] == "/dashboard/login?next=/dashboard/alerts%3Fstatus%3Dopen"
    login = browser.get(r.headers["location"])
    assert 'name="next" value="/dashboard/alerts?status=open"' in login.text
    token = re.search(r'name="csrf" value="([^"]+)"', login.text)
    assert token is not None
    r = browser.post(
        "/dashboard/login",
        data={"key": ADMIN_KEY, "csrf": token[1], "next": "/dashboard/alerts?status=open"},
    )
    assert r.headers["location"] == "/dashboard/alerts?status=open"


def test_values_from_the_request_are_escaped_in_pages(browser: httpx.Client) -> None:
    sign_in(browser)
    r = browser.get("/dashboard/users/" + quote(HOSTILE_USER, safe=""))
    assert r.status_code == 200
    assert HOSTILE_USER not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    r = browser.get("/dashboard/alerts/" + quote('"><img src=x onerror=alert(1)>', safe=""))
    assert r.status_code == 200
    assert "<img src=x" not in r.text and "&#34;&gt;&lt;img src=x" in r.text
    r = browser.get("/dashboard/login?next=" + quote('/dashboard/"><script>x</script>', safe=""))
    assert "<script>x" not in r.text


def test_the_json_api_takes_the_session_cookie(live: Live, browser: httpx.Client) -> None:
    assert browser.get("/v1/overview").status_code == 401
    csrf = sign_in(browser)
    assert browser.get("/v1/overview").status_code == 200
    assert browser.get("/v1/events").status_code == 200
    # a change with the cookie alone is refused: a CSRF token must come with it
    r = browser.post("/v1/alerts/al_nope/feedback", json={"verdict": "safe"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = browser.post(
        "/v1/alerts/al_nope/feedback", json={"verdict": "safe"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 404  # through the check: there is no such alert
    # also on the ingestion fast path, which answers the risk API without the router
    r = browser.post("/v1/risk/login", json={"user_id": "jane", "ip": "10.0.0.1"})
    assert r.status_code == 403
    r = browser.delete("/v1/users/jane")
    assert r.status_code == 403 and live.client.get("/healthz").status_code == 200


def test_sign_out_ends_the_session(browser: httpx.Client) -> None:
    csrf = sign_in(browser)
    token = browser.cookies[SESSION_COOKIE]
    r = browser.post("/dashboard/logout", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    assert SESSION_COOKIE not in browser.cookies
    browser.cookies.set(SESSION_COOKIE, token)  # replaying the old cookie opens nothing
    assert browser.get("/dashboard/").status_code == 303
    assert browser.get("/v1/overview").status_code == 401


def test_overview_counts_what_arrives(live: Live) -> None:
    now = datetime.now(UTC).isoformat()
    page = {
        "type": "page",
        "userId": "jane",
        "timestamp": now,
        "context": {
            "page": {"url": "https://shop.example/cart", "referrer": "https://news.example/a"}
        },
        "properties": {"path": "/cart"},
    }
    send(
        live,
        [
            page,
            {"type": "track", "event": HOSTILE_EVENT, "userId": HOSTILE_USER, "timestamp": now},
            {"type": "track", "event": "buy", "userId": "jane", "timestamp": now},
            {"type": "track", "event": "buy", "anonymousId": "a1", "timestamp": now},
        ],
    )
    nameless = {"batch": [{"type": "track", "userId": "x"}]}
    r = live.client.post("/v1/batch", json=nameless, headers=live.write)
    assert r.status_code in (200, 400)
    body = live.client.get("/v1/overview", headers=live.admin).json()
    assert body["minutes"] == 60 and len(body["events_per_minute"]) == 60
    assert body["events_in_window"] == 4 and body["events_total"] == 4
    assert body["events_per_minute"][-1][1] + body["events_per_minute"][-2][1] == 4
    assert body["active_users"] == 3
    assert {"value": "buy", "count": 2} in body["top_events"]
    assert {"value": HOSTILE_EVENT, "count": 1} in body["top_events"]
    assert body["top_pages"] == [{"value": "/cart", "count": 1}]
    assert body["sources"] == [{"value": "news.example", "count": 1}]
    assert body["failed"]["total"] == 1
    assert body["failed"]["reasons"] == [{"reason": "missing_event_name", "count": 1}]
    assert body["failed"]["recent"][0]["reason"] == "missing_event_name"
    assert "raw" not in body["failed"]["recent"][0]
    engine = body["engine"]
    assert engine["lag_events"] == max(0, engine["log_offset"] - engine["engine_offset"])


@pytest.mark.parametrize("minutes", ["0", "1441", "x", "-5"])
def test_overview_refuses_bad_windows(live: Live, minutes: str) -> None:
    r = live.client.get(f"/v1/overview?minutes={minutes}", headers=live.admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter"
    r = live.client.get("/v1/overview?minutes=5", headers=live.admin)
    assert len(r.json()["events_per_minute"]) == 5


def test_assets_come_from_this_server(browser: httpx.Client) -> None:
    r = browser.get("/dashboard/static/plotly.min.js?v=1", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert "max-age=31536000" in r.headers["cache-control"]
    assert r.text.lstrip().startswith("/**") and "plotly.js" in r.text[:200]
    plain = browser.get("/dashboard/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.content == r.content
    for name in ("common.js", "overview.js", "dashboard.css"):
        r = browser.get("/dashboard/static/" + name)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    assert (
        browser.get("/dashboard/static/dashboard.css")
        .headers["content-type"]
        .startswith("text/css")
    )
    for missing in ("nope.js", "..%2F..%2Fapp.py", "%2e%2e"):
        r = browser.get("/dashboard/static/" + missing)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_our_scripts_never_write_html() -> None:
    # Data reaches the page as text only: no innerHTML / outerHTML / insertAdjacentHTML /
    # document.write anywhere in our scripts.
    for script in (Path(dashboard.__file__).parent / "static" / "dashboard").glob("*.js"):
        code = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, f"{script.name} uses {sink}"

"""The sessions view and the trend chart's traffic markers in real Chromium, on a real
server with a real session model.

The module's server learns a session model from ~300 short human-like sessions and a
few crawler sessions (``POST /v1/models/session_anomaly/train``), then takes new traffic
that the model scores. Every dialog a page opens and every script error fails the test:
a session id, visitor id or reason that ran as script would open one. Needs Debian's
Chromium at /usr/bin/chromium; without it the tests skip, unless
USERTIDE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from browsersupport import BrowserTab, chromium
from livesupport import ADMIN_KEY, WRITE_KEY, make_settings
from usertide.alerts.model import Alert
from usertide.events.reason import Reason
from usertide.server import BackgroundServer

pytestmark = pytest.mark.slow

HOSTILE_SESSION = "s<script>alert('session')</script>"
HOSTILE_VISITOR = "v<img src=x onerror=alert('visitor')>"
HOSTILE_REASON = "<b>bold</b> <img src=x onerror=alert('reason')>"
TIMEOUT_MS = 10_000
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
# The sessions table's rows (not its empty-state row) as {heading: text}, plus the id.
READ_ROWS = """(table) => {
  const heads = [...table.tHead.rows[0].cells].map((c) => c.textContent);
  return [...table.tBodies[0].rows]
    .filter((r) => !r.classList.contains("empty"))
    .map((r) => ({
      session_id: r.dataset.session,
      ...Object.fromEntries([...r.cells].map((c, i) => [heads[i], c.textContent])),
    }));
}"""
NO_MODEL = "No session model trained yet — it trains from stored sessions on its schedule"


# -- traffic ---------------------------------------------------------------------------
def _page(anon: str, sid: str, at: datetime, path: str, bot: bool) -> dict[str, Any]:
    return {
        "type": "page",
        "anonymousId": anon,
        "timestamp": at.isoformat(),
        "context": {
            "sessionId": sid,
            "ip": "54.221.60.7" if bot else "73.92.12.9",
            "userAgent": "python-requests/2.31" if bot else BROWSER_UA,
            "page": {"path": path, "referrer": None if bot else "https://www.google.com/"},
        },
    }


def crawler(anon: str, sid: str, start: datetime) -> list[dict[str, Any]]:
    """A data-centre script reading 150 pages, one every 2 s, without referrers."""
    return [_page(anon, sid, start + timedelta(seconds=2 * k), f"/p/{k}", True) for k in range(150)]


def traffic(prefix: str, start: datetime, humans: int = 300, bots: int = 4) -> list[dict[str, Any]]:
    """Short human visits over an hour from ``start`` and a few crawlers (anonymous ids
    ``{prefix}h{i}`` / ``{prefix}b{i}``, session ids ``{prefix}hs{i}`` / ``{prefix}bs{i}``)."""
    rng = random.Random(prefix)
    events: list[dict[str, Any]] = []
    for i in range(humans):
        at = start + timedelta(seconds=rng.uniform(0, 3600))
        for _ in range(rng.randint(1, 10)):
            path = f"/p/{rng.randint(1, 300)}"
            events.append(_page(f"{prefix}h{i}", f"{prefix}hs{i}", at, path, False))
            at += timedelta(seconds=rng.lognormvariate(3.0, 1.0))
    for b in range(bots):
        at = start + timedelta(seconds=rng.uniform(0, 3000))
        events += crawler(f"{prefix}b{b}", f"{prefix}bs{b}", at)
    events.sort(key=lambda e: e["timestamp"])
    return events


_ids = itertools.count()


def send(server: BackgroundServer, api: httpx.Client, events: list[dict[str, Any]]) -> None:
    for i in range(0, len(events), 500):
        batch = [{"messageId": f"sv{next(_ids)}", **e} for e in events[i : i + 500]]
        r = api.post("/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""))
        assert r.status_code == 200, r.text
    assert server.service.runtime.wait_for(server.service.committer.last_offset, 30)


# -- servers and the browser -----------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    srv = BackgroundServer(make_settings(Path(tmp_path_factory.mktemp("sessions")) / "data"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server: BackgroundServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def trained(server: BackgroundServer, api: httpx.Client) -> list[str]:
    """A session model in force, and new traffic it scored; the crawlers' session ids."""
    # Learned from yesterday's sessions at the hours scored today: the same share of
    # night-time events in both (a feature of its own).
    now = datetime.now(UTC).replace(microsecond=0)
    send(server, api, traffic("t", now - timedelta(hours=27)))
    server.service.runtime.checkpoint()  # sessions reach the store at checkpoints
    r = api.post("/v1/models/session_anomaly/train", timeout=60)
    assert r.status_code == 201, r.text
    start = now - timedelta(hours=3)
    send(
        server,
        api,
        traffic("n", start)
        + crawler(HOSTILE_VISITOR, HOSTILE_SESSION, start + timedelta(minutes=9)),
    )
    server.service.runtime.checkpoint()
    return [f"nbs{b}" for b in range(4)] + [HOSTILE_SESSION]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class Tab(BrowserTab):
    def __init__(self, browser: Any, base: str) -> None:
        super().__init__(browser, base, ADMIN_KEY, TIMEOUT_MS)

    def rows(self) -> list[dict[str, str]]:
        """The sessions table as shown: one dict per row, keyed by column heading (read
        in one go: the page replaces the rows at every refresh)."""
        found: list[dict[str, str]] = self.page.locator("#session-table").evaluate(READ_ROWS)
        return found

    def wait_rows(self, check: Any, timeout: float = TIMEOUT_MS / 1000) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if rows and check(rows):
                return rows
            assert time.monotonic() < deadline, f"the table never matched: {rows[:6]}"
            time.sleep(0.2)


@pytest.fixture
def tab(browser: Any, server: BackgroundServer) -> Iterator[Tab]:
    t = Tab(browser, server.url)
    yield t
    t.context.close()
    assert t.dialogs == [], f"a page opened dialogs: {t.dialogs}"
    assert t.errors == [], f"script errors: {t.errors}"


# -- the sessions view -----------------------------------------------------------------
def test_without_a_model_the_view_says_how_one_comes(browser: Any, tmp_path: Path) -> None:
    fresh = BackgroundServer(make_settings(tmp_path / "data"))
    fresh.start()
    t = Tab(browser, fresh.url)
    try:
        with httpx.Client(base_url=fresh.url, timeout=10) as client:
            # stored sessions, but no model trained from them yet
            send(fresh, client, traffic("e", datetime.now(UTC) - timedelta(hours=1), 5, 1))
        fresh.service.runtime.checkpoint()
        t.sign_in("/dashboard/sessions")
        t.wait_text("#session-table tbody", NO_MODEL)
        t.wait_text("#model-note", "No session model in force")
        nav = t.page.locator("header nav a[aria-current=page]")
        assert nav.inner_text() == "Sessions" and nav.get_attribute("href") == "/dashboard/sessions"
    finally:
        t.context.close()
        fresh.stop()
    assert t.dialogs == [] and t.errors == []


def test_the_most_anomalous_sessions_come_first_with_their_reasons(
    tab: Tab, api: httpx.Client, trained: list[str]
) -> None:
    tab.sign_in("/dashboard/sessions")
    tab.wait_text("#model-note", "Model session_anomaly v1")
    rows = tab.wait_rows(lambda rows: len(rows) > len(trained))
    top = rows[: len(trained)]
    assert {r["session_id"] for r in top} == set(trained)
    answer = api.get("/v1/sessions?order=score&limit=5").json()["sessions"]
    expected = {s["session_id"]: s for s in answer}
    assert set(expected) == set(trained)  # the API agrees: the view shows what it answers
    for shown in top:
        session = expected[shown["session_id"]]
        assert shown["Label"] == "Anomaly" == session["anomaly"]["label"]
        assert shown["Score"] == f"{session['anomaly']['score']:.3f}"
        assert shown["Model"] == "v1" and shown["Events"] == "150"
        # the features that stand out, the score's own line ("abnormal_session") left out
        reasons = session["anomaly"]["reasons"]
        assert reasons[0]["code"] == "abnormal_session" and len(reasons) > 1
        assert shown["Reasons"] == "; ".join(r["message"] for r in reasons[1:4])
    # scores fall down the table; the humans below are Normal
    scores = [float(r["Score"]) for r in rows if r["Score"] != "–"]
    assert scores == sorted(scores, reverse=True)
    assert "Normal" in {r["Label"] for r in rows}
    assert "Conversion" not in tab.page.locator("#session-table thead").inner_text()  # all null
    # the hostile ids are shown as the text they are, and lead to the visitor's profile
    hostile = next(r for r in top if r["session_id"] == HOSTILE_SESSION)
    assert hostile["Session"] == HOSTILE_SESSION
    assert hostile["User or visitor"] == HOSTILE_VISITOR + " visitor"
    assert tab.page.locator("main script, main img, main b").count() == 0
    tab.page.locator("#session-table a").filter(has_text=HOSTILE_VISITOR).click()
    tab.page.wait_for_url("**/dashboard/users/**")
    assert tab.page.locator("#user-id").inner_text() == HOSTILE_VISITOR
    tab.wait_text("#anonymous", "anonymous visitor")


def test_anomalous_only_shows_the_anomalies_alone(
    tab: Tab, api: httpx.Client, trained: list[str]
) -> None:
    anomalies = api.get("/v1/sessions?order=score&label=Anomaly&limit=50").json()["sessions"]
    assert {s["session_id"] for s in anomalies} >= set(trained)
    tab.sign_in("/dashboard/sessions")
    tab.wait_rows(lambda rows: len(rows) == 50 and rows[-1]["Label"] != "Anomaly")
    tab.page.check("#anomalous-only")
    rows = tab.wait_rows(lambda rows: len(rows) == len(anomalies))
    assert [r["session_id"] for r in rows] == [s["session_id"] for s in anomalies]
    assert {r["Label"] for r in rows} == {"Anomaly"}
    assert "anomalous=1" in tab.page.url
    # the filter lives in the URL: a reload keeps it
    tab.page.reload()
    assert tab.page.is_checked("#anomalous-only")
    tab.wait_rows(lambda rows: {r["Label"] for r in rows} == {"Anomaly"})
    tab.page.uncheck("#anomalous-only")
    tab.wait_rows(lambda rows: "Normal" in {r["Label"] for r in rows})
    assert "anomalous" not in tab.page.url


def test_the_view_follows_new_sessions_without_a_reload(
    tab: Tab, server: BackgroundServer, api: httpx.Client, trained: list[str]
) -> None:
    tab.sign_in("/dashboard/sessions?anomalous=1")
    tab.wait_rows(lambda rows: {r["session_id"] for r in rows} >= set(trained))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    send(server, api, crawler("late-visitor", "late-session", start))
    # no checkpoint forced: the engine's own (every second) and the page's poll bring it
    tab.wait_rows(lambda rows: "late-session" in {r["session_id"] for r in rows}, timeout=30)


def test_reasons_and_probabilities_are_shown_as_text(tab: Tab, trained: list[str]) -> None:
    # No model writes HTML into a reason, and no conversion model exists yet: the real
    # answer, with a hostile reason and a probability added on its way to the page.
    def hostile(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        first = body["sessions"][0]
        first["anomaly"]["reasons"].insert(1, {"code": "x", "message": HOSTILE_REASON})
        first["conversion"] = {"probability": 0.42, "model_version": 1}
        route.fulfill(response=response, json=body)

    tab.page.route("**/v1/sessions?*", hostile)
    tab.sign_in("/dashboard/sessions")
    rows = tab.wait_rows(lambda rows: HOSTILE_REASON in rows[0]["Reasons"])
    assert rows[0]["Reasons"].startswith(HOSTILE_REASON)
    assert rows[0]["Conversion"] == "42.0%" and rows[1]["Conversion"] == "–"
    assert tab.page.locator("#session-table th.conversion").is_visible()
    assert tab.page.locator("main script, main img, main b").count() == 0
    time.sleep(0.2)  # a dialog, if any script ran, would have opened by now


def test_a_page_without_a_session_sends_the_browser_to_sign_in(tab: Tab) -> None:
    tab.page.goto(tab.base + "/dashboard/sessions?anomalous=1")
    assert "/dashboard/login" in tab.page.url
    assert tab.page.locator("#sessions-page").count() == 0


# -- traffic anomalies on the trends chart ---------------------------------------------
def _traffic_alert(alert_id: str, at: datetime, code: str, message: str) -> Alert:
    return Alert(
        id=alert_id,
        user_id="traffic:$pageview",
        detector="traffic_event",
        event_id="e-" + alert_id,
        level="medium",
        score=0.9,
        reasons=(Reason(code=code, message=message),),
        data={"minute": at.isoformat()},
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
        occurred_at=at,
    )


def test_traffic_anomalies_mark_the_trend_chart(
    tab: Tab, server: BackgroundServer, api: httpx.Client
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    spike_at, drop_at = now - timedelta(minutes=40), now - timedelta(minutes=20)
    minutes = [now - timedelta(minutes=m) for m in range(60)]
    send(server, api, [{"type": "track", "event": "sv-visit", "userId": "trender",
                        "timestamp": at.isoformat()} for at in minutes])  # fmt: skip
    login = Alert(
        id="al_login", user_id="jane", detector="login_risk", event_id="e-login", level="high",
        score=0.9, created_at=now, updated_at=now, occurred_at=now - timedelta(minutes=5),
    )  # fmt: skip
    stored = [
        _traffic_alert("al_spike", spike_at, "traffic_spike", f"page views {HOSTILE_REASON}"),
        _traffic_alert("al_drop", drop_at, "traffic_drop", "page views fell"),
        _traffic_alert("al_old", now - timedelta(days=3), "traffic_spike", "out of the range"),
        login,  # not a traffic alert: not drawn
    ]
    assert server.service.store.alerts_add(stored) == {a.id for a in stored}
    window = {"events": "sv-visit", "interval": "minute", "from": iso(now - timedelta(hours=2)),
              "to": iso(now + timedelta(hours=1))}  # fmt: skip
    tab.sign_in("/dashboard/trends?" + urlencode(window))
    tab.wait_text("#trend-table", "60")  # the series, drawn with its markers
    tab.wait_text("#trend-markers", "2 traffic anomalies in this range")
    assert tab.page.locator("#trend-chart .shapelayer path").count() == 2
    layout = tab.page.evaluate(
        "() => { const l = document.getElementById('trend-chart').layout;"
        " return {shapes: l.shapes, annotations: l.annotations}; }"
    )
    shapes = sorted(layout["shapes"], key=lambda s: s["x0"])
    assert [datetime.fromisoformat(s["x0"]) for s in shapes] == [spike_at, drop_at]
    assert all(s["yref"] == "paper" and s["x0"] == s["x1"] for s in shapes)
    hovers = sorted(a["hovertext"] for a in layout["annotations"])
    assert [h.split(": ", 1)[1] for h in hovers] == [
        "page views &lt;b&gt;bold&lt;/b&gt; &lt;img src=x onerror=alert('reason')&gt;",
        "page views fell",
    ]  # escaped for plotly, which reads a few tags in labels
    # hovered, the ▲ shows the reason as the text it is
    spike = tab.page.locator("#trend-chart .annotation").filter(has_text="▲")
    spike.hover()
    tab.wait_text("#trend-chart .hoverlayer", f"page views {HOSTILE_REASON}")
    assert tab.page.locator("#trend-chart img, #trend-chart script").count() == 0
    hover = tab.page.locator("#trend-chart .hoverlayer")
    assert hover.locator("b, [style*=bold]").count() == 0
    time.sleep(0.2)  # a dialog, if any script ran, would have opened by now


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")

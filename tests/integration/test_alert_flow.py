"""Unusual sign-in → alert → real SMTP and webhook deliveries → the user's "it was me"
link → the model learns. And an SMTP outage: delivered once, after it comes back."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from livesupport import ADMIN_KEY, WRITE_KEY, make_settings

sys.path.insert(0, str(Path(__file__).parent.parent / "notify"))

from notify_support import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    SmtpServer,
    TlsFiles,
    WebhookReceiver,
    make_tls,
    wait_until,
)

from usertide.server import BackgroundServer
from usertide.store import EventQuery

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    folder = tmp_path / "tls"
    folder.mkdir()
    return make_tls(folder)


@pytest.fixture
def relay(tls: TlsFiles) -> Iterator[SmtpServer]:
    smtp = SmtpServer("starttls", tls)
    smtp.start()
    yield smtp
    smtp.stop()


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def server(
    tmp_path: Path, tls: TlsFiles, relay: SmtpServer, hooks: WebhookReceiver
) -> Iterator[BackgroundServer]:
    settings = make_settings(
        tmp_path / "data",
        smtp_host="127.0.0.1",
        smtp_port=relay.port,
        smtp_security="starttls",
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_from="Shop Security <security@shop.test>",
        smtp_ca_file=tls.ca,
        admin_emails="soc@shop.test",
        webhook_urls=hooks.url(),
        webhook_secret=WEBHOOK_SECRET,
        webhook_allow_private=True,
        app_name="Shop",
        notify_retry_seconds=0.2,
    )
    srv = BackgroundServer(settings)
    srv.start()
    yield srv
    srv.stop()


def sign_in(client: httpx.Client, user: str, ip: str, ua: str, when: str) -> dict:  # type: ignore[type-arg]
    r = client.post(
        "/v1/risk/login",
        headers=ADMIN,
        json={"user_id": user, "ip": ip, "user_agent": ua, "timestamp": when},
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def stored(client: httpx.Client, alert_id: str) -> bool:
    """The risk API answers once the attempt is recorded; the engine stores the alert
    when it applies it. Reading it at once waits for that (read your writes), so the
    first read finds it."""
    return client.get(f"/v1/alerts/{alert_id}", headers=ADMIN).status_code == 200


def settle(server: BackgroundServer) -> None:
    """Wait until every scored sign-in (recorded before its answer) is processed."""
    assert server.service.runtime.wait_for(server.service.committer.last_offset)


def usual_history(client: httpx.Client, user: str) -> None:
    client.post(
        "/v1/identify",
        json={
            "userId": user,
            "writeKey": WRITE_KEY,
            "traits": {"email": f"{user}@mail.test", "first_name": user.capitalize()},
        },
    )
    for day in range(10, 20):
        assert (
            sign_in(client, user, f"73.92.12.{day}", CHROME, f"2026-11-{day}T16:00:00Z")["level"]
            == "low"
        )


def test_unusual_sign_in_alerts_by_mail_and_webhook_and_feedback_teaches(
    server: BackgroundServer, relay: SmtpServer, hooks: WebhookReceiver
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        usual_history(client, "jane")
        settle(server)
        risky = sign_in(client, "jane", "176.36.0.9", FIREFOX, "2026-11-21T16:00:00Z")
        assert risky["level"] in ("medium", "high") and risky["action"] != "allow"
        assert {"new_country", "new_device"} <= {r["code"] for r in risky["reasons"]}
        alert_id = risky["alert_id"]
        assert alert_id and stored(client, alert_id)

        assert wait_until(lambda: len(relay.sink.messages) >= 2 and hooks.received, 15)
        by_to = {m["To"]: m for m in relay.sink.messages}
        admin = by_to["soc@shop.test"]
        assert "jane" in admin["Subject"] and admin["Message-ID"]
        user_mail = by_to["jane@mail.test"]
        assert user_mail["Subject"].startswith("New sign-in to Shop from Firefox on Windows")
        text = user_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = user_mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "Kiev, Ukraine" in text and "was this you?" in text and "<a href" in html
        (hook,) = hooks.received
        assert hook.signature_ok and alert_id.encode() in hook.body

        yes = re.search(r"Yes, it was me: (\S+)", text)
        assert yes is not None
        link = yes.group(1).replace(server.url, "")
        page = client.get(link)
        assert page.status_code == 200 and "<form method='post'>" in page.text
        assert client.get(f"/v1/alerts/{alert_id}", headers=ADMIN).json()["status"] == "open"
        done = client.post(link)
        assert done.status_code == 200 and "Thank you" in done.text
        alert = client.get(f"/v1/alerts/{alert_id}", headers=ADMIN).json()
        assert alert["status"] == "dismissed" and alert["feedback"][0]["source"] == "user_link"

        settle(server)
        user = client.get("/v1/users/jane", headers=ADMIN).json()
        assert "UA" in user["login_risk"]["countries"] and not user["login_risk"]["pending_review"]
        again = sign_in(client, "jane", "176.36.0.10", FIREFOX, "2026-11-22T09:00:00Z")
        assert again["level"] == "low"

        tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        assert client.post(tampered).status_code == 400


def test_admin_feedback_and_listing(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        usual_history(client, "bob")
        settle(server)
        alert_id = sign_in(client, "bob", "176.36.0.9", FIREFOX, "2026-11-21T16:00:00Z")["alert_id"]
        assert stored(client, alert_id)
        listed = client.get("/v1/alerts?status=open", headers=ADMIN).json()["alerts"]
        assert [a["id"] for a in listed] == [alert_id]
        r = client.post(
            f"/v1/alerts/{alert_id}/feedback", headers=ADMIN, json={"verdict": "confirmed"}
        )
        assert r.status_code == 200 and r.json()["status"] == "confirmed"
        r = client.post(f"/v1/alerts/{alert_id}/feedback", headers=ADMIN, json={"verdict": "maybe"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field"
        assert client.get("/v1/alerts").status_code == 401
        for headers in ({}, {"Authorization": "Bearer wrong"}):  # the risk API's fast path
            r = client.post(
                "/v1/risk/login", headers=headers, json={"user_id": "x", "ip": "1.2.3.4"}
            )
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert client.get("/v1/risk/login", headers=ADMIN).status_code == 405
        # the same reasons again within the hour: no second alert
        second = sign_in(client, "bob", "176.36.0.11", FIREFOX, "2026-11-21T16:05:00Z")
        assert second["level"] != "low" and second["alert_id"] is None


def test_smtp_outage_delivers_once_after_it_returns(
    server: BackgroundServer, relay: SmtpServer
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        usual_history(client, "carol")
        settle(server)
        relay.stop()
        alert_id = sign_in(client, "carol", "176.36.0.9", FIREFOX, "2026-11-21T16:00:00Z")[
            "alert_id"
        ]
        time.sleep(1.0)  # a few failed attempts while the relay is down
        assert relay.sink.messages == []
        relay.start()
        assert wait_until(lambda: len(relay.sink.messages) >= 2, 20)
        time.sleep(1.0)
        ids = [m["Message-ID"] for m in relay.sink.messages]
        assert len(ids) == len(set(ids)) == 2
        assert {m["To"] for m in relay.sink.messages} == {"soc@shop.test", "carol@mail.test"}
        notes = server.service.store.outbox_list()
        assert {n.status.value for n in notes if alert_id in n.id} == {"delivered"}
        assert max(n.attempts for n in notes if alert_id in n.id) >= 2


@pytest.mark.parametrize(
    "body",
    [
        {"ip": "1.2.3.4"},
        {"user_id": "u"},
        {"user_id": "", "ip": "1.2.3.4"},
        {"user_id": "u", "ip": "1.2.3.4", "success": "yes"},
        {"user_id": "u", "ip": "1.2.3.4", "extra": 1},
    ],
)
def test_risk_api_rejects_bad_input_naming_the_field(server: BackgroundServer, body: dict) -> None:  # type: ignore[type-arg]
    r = httpx.post(f"{server.url}/v1/risk/login", headers=ADMIN, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_field"


def test_risk_api_refuses_strings_that_are_not_text(server: BackgroundServer) -> None:
    body = b'{"user_id": "u\\ud800", "ip": "1.2.3.4", "user_agent": "x\\udc00"}'
    r = httpx.post(f"{server.url}/v1/risk/login", headers=ADMIN, content=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    assert server.service.runtime.alive


def test_recorded_attempt_carries_the_answered_assessment(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answer = sign_in(client, "dave", "73.92.12.5", CHROME, "2026-11-21T16:00:00Z")
        settle(server)
        (event,) = server.service.store.query_events(EventQuery(user_id="dave"))
        assert event.id == answer["event_id"] and event.source == "risk_api"
        assert event.properties["$risk"]["score"] == answer["score"]

"""What people read: user strings escaped in HTML, single-line in subjects."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from usertide.alerts import Alert
from usertide.alerts.templates import admin_alert, one_line, user_signin
from usertide.engine import Reason

T0 = datetime(2026, 11, 20, 14, 2, tzinfo=UTC)


def alert(user: str, city: str) -> Alert:
    return Alert(
        id="al_1",
        user_id=user,
        detector="login_risk",
        event_id="e1",
        level="high",
        score=0.93,
        reasons=(Reason(code="new_country", message="<b>Ukraine</b>"),),
        data={
            "city": city,
            "country_name": "Ukraine",
            "device": "Firefox on Windows",
            "ip": "176.36.0.0",
            "action": "deny",
        },
        created_at=T0,
        updated_at=T0,
        occurred_at=T0,
    )


def test_user_email_reads_like_a_sentence() -> None:
    m = user_signin(alert("jane", "Kyiv"), "Shop", "https://s/yes", "https://s/no", "Jane")
    assert m.subject == "New sign-in to Shop from Firefox on Windows near Kyiv, Ukraine"
    assert "at 2026-11-20 14:02 UTC — was this you?" in m.text
    assert "Yes, it was me: https://s/yes" in m.text and 'href="https://s/no"' in m.html


def test_hostile_strings_are_neutralised() -> None:
    evil = alert("mallory\r\nBcc: all@x.test", "<script>alert(1)</script>")
    admin = admin_alert(evil, "Shop\nX-Injected: 1", "https://s/e")
    assert "\n" not in admin.subject and "\r" not in admin.subject
    assert "<script>" not in admin.html and "&lt;script&gt;" in admin.html
    assert "&lt;b&gt;Ukraine&lt;/b&gt;" in admin.html
    user = user_signin(evil, "Shop", "https://s/y", "https://s/n", "Eve\r\nBcc: x")
    assert "\n" not in user.subject and "<script>" not in user.html
    assert one_line("a\x00b\x1bc") == "a b c"


def test_session_and_traffic_alerts_read_as_what_they_are() -> None:
    for detector, about in (
        ("session_anomaly", "Abnormal session"),
        ("traffic_country", "Traffic anomaly"),
    ):
        a = msgspec.structs.replace(
            alert("anon:<v1>", "Kyiv"),
            detector=detector,
            reasons=(Reason(code="traffic_spike", message="412 page views <script>"),),
        )
        message = admin_alert(a, "Shop", "https://x.test/e")
        assert message.subject.startswith(f"[Shop] {about} (high): anon:<v1>: 412 page views")
        assert "sign-in" not in message.subject and "sign-in" not in message.text
        assert "<script>" not in message.html and "&lt;script&gt;" in message.html
        assert "IP" not in message.text

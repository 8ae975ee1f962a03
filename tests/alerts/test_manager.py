"""Alert rules, deduplication, throttling and the digest, over a real store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from usertide.alerts import AlertStatus
from usertide.alerts.manager import AlertManager, Recipients
from usertide.alerts.rules import AlertPolicy, AlertRule
from usertide.engine import Detection, Reason
from usertide.notify import LinkSigner, Notification
from usertide.store import DuckDBStore

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(tmp_path / "s.duckdb")
    s.migrate()
    yield s
    s.close()


def detection(
    user: str, event: str, *codes: str, level: str = "high", success: bool = True
) -> Detection:
    return Detection(
        detector="login_risk",
        user_key=user,
        event_id=event,
        timestamp=T0.timestamp(),
        score=0.9,
        level=level,
        reasons=tuple(Reason(code=c, message=f"{c} for {user}") for c in codes),
        data={
            "success": success,
            "city": "Kyiv",
            "country_name": "Ukraine",
            "device": "Firefox on Windows",
            "action": "deny",
        },
    )


def manager(
    store: DuckDBStore, clock: Clock, sent: list[Notification], **policy: object
) -> AlertManager:
    def enqueue(notes: Sequence[Notification]) -> int:
        sent.extend(notes)
        return len(notes)

    return AlertManager(
        store,
        policy=AlertPolicy(**policy),  # type: ignore[arg-type]
        recipients=Recipients(
            app_name="Shop",
            base_url="https://shop.test",
            admin_emails=("soc@shop.test",),
            webhook_urls=("https://hooks.shop.test/x",),
        ),
        enqueue=enqueue,
        links=LinkSigner(b"0123456789abcdef0123", "https://shop.test"),
        contact=lambda user: (f"{user}@mail.test", user.title()),
        clock=clock,
    )


def test_one_alert_per_user_and_reason_within_the_window(store: DuckDBStore) -> None:
    clock, sent = Clock(), []
    m = manager(store, clock, sent)
    first = m.raise_alert(detection("jane", "e1", "new_country"))
    assert first is not None and store.alert_get(first.id) is not None
    assert m.raise_alert(detection("jane", "e1", "new_country")) is None  # already raised
    assert m.raise_alert(detection("jane", "e2", "new_country")) is None
    assert m.raise_alert(detection("jane", "e3", "new_country", "brute_force")) is not None
    clock.now += timedelta(hours=2)
    assert m.raise_alert(detection("jane", "e4", "new_country")) is not None
    assert m.deduplicated == 1
    # a restart keeps the window
    clock.now += timedelta(minutes=5)
    again = manager(store, clock, [])
    again.reload()
    assert again.raise_alert(detection("jane", "e5", "new_country")) is None


def test_rules_decide_who_is_told(store: DuckDBStore) -> None:
    clock, sent = Clock(), []
    m = manager(store, clock, sent)
    assert m.raise_alert(detection("jane", "e0", "new_device", level="low")) is None
    m.raise_alert(detection("jane", "e1", "new_country"))
    kinds = sorted((n.kind, n.channel, n.recipient) for n in sent)
    assert kinds == [
        ("admin_alert", "email", "soc@shop.test"),
        ("alert", "webhook", "https://hooks.shop.test/x"),
        ("user_signin", "email", "jane@mail.test"),
    ]
    sent.clear()
    m.raise_alert(detection("bob", "e2", "brute_force", success=False))
    assert "user_signin" not in {n.kind for n in sent}  # no "was this you?" for failures
    quiet = AlertManager(
        store,
        policy=AlertPolicy(
            rules=(
                AlertRule(
                    name="admins only",
                    notify_user=False,
                    webhooks=False,
                    reasons=("impossible_travel",),
                ),
            )
        ),
        recipients=Recipients(admin_emails=("soc@shop.test",)),
        enqueue=lambda notes: len(notes),
        clock=clock,
    )
    assert quiet.raise_alert(detection("carol", "e3", "new_country")) is None


def test_throttle_then_digest(store: DuckDBStore) -> None:
    clock, sent = Clock(), []
    m = manager(store, clock, sent, user_per_hour=2, global_per_hour=3)
    for i in range(4):
        clock.now += timedelta(minutes=1)
        m.raise_alert(detection("jane", f"j{i}", f"reason{i}"))
    notified = {n.id.split(":")[0] for n in sent}
    assert len(notified) == 2  # jane's first two
    held = [a for a in store.alerts() if a.data["notified"] == "throttled"]
    assert len(held) == 2
    sent.clear()
    assert m.flush_digest() == 2
    (digest,) = sent
    assert digest.kind == "digest" and "2 more sign-in alerts" in digest.subject
    assert m.flush_digest() == 0


def test_feedback_updates_the_alert_and_makes_a_model_event(store: DuckDBStore) -> None:
    clock, sent = Clock(), []
    m = manager(store, clock, sent)
    alert = m.raise_alert(detection("jane", "e1", "new_country"))
    assert alert is not None
    updated, event = m.feedback(alert.id, "safe", "user_link")
    assert updated.status is AlertStatus.DISMISSED
    assert event.name == "$login_feedback" and event.properties["event_id"] == "e1"
    assert event.properties["verdict"] == "safe" and event.user_id == "jane"
    with pytest.raises(ValueError, match="verdict"):
        m.feedback(alert.id, "maybe", "admin")
    with pytest.raises(KeyError):
        m.feedback("al_nope", "safe", "admin")


def test_alerts_on_failed_attempts_do_not_hide_the_sign_in_after_them(
    store: DuckDBStore,
) -> None:
    clock, sent = Clock(), []
    m = manager(store, clock, sent)
    assert m.raise_alert(detection("jane", "f1", "brute_force", success=False)) is not None
    assert m.raise_alert(detection("jane", "f2", "brute_force", success=False)) is None
    signed_in = m.raise_alert(detection("jane", "ok1", "brute_force", success=True))
    assert signed_in is not None
    assert "user_signin" in {n.kind for n in sent}


def test_a_claimed_alert_can_be_waited_for_until_the_engine_stores_it(
    store: DuckDBStore,
) -> None:
    import threading

    m = manager(store, Clock(), [])
    claimed = m.claim(detection("jane", "e1", "new_country"))
    assert claimed is not None and m.claimed(claimed)
    assert not m.wait_stored(claimed, timeout=0.05)  # not stored yet
    assert store.alert_get(claimed) is None
    later = threading.Timer(0.1, m.on_outputs, [[detection("jane", "e1", "new_country")]])
    later.start()
    assert m.wait_stored(claimed, timeout=5)
    later.join()
    stored = store.alert_get(claimed)
    assert stored is not None and stored.user_id == "jane"
    assert not m.claimed(claimed)
    assert m.wait_stored("never-claimed", timeout=0)  # nothing to wait for

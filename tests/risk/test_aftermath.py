"""LoginAftermath: what an account does right after signing in, scored with the sign-in."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from usertide.alerts.rules import AlertRule
from usertide.engine import Detection, Engine
from usertide.engine.base import Processor
from usertide.events import Context, Event
from usertide.risk import LoginAftermath, LoginRisk, NetworkVelocity, RiskConfig
from usertide.risk.aftermath import AftermathState
from usertide.service import build_processors

from .test_login_risk import (
    ATT_IP,
    CHROME_MAC,
    ENRICH,
    HOME_IP,
    T0,
    janes_habits,
    login,
    run,
    site_population,
)


def action(
    user: str, name: str, at: timedelta, ip: str = "73.92.12.7", ua: str = CHROME_MAC
) -> Event:
    event = Event(
        id=f"act-{name}-{at.total_seconds()}",
        type="track",
        name=name,
        user_id=user,
        timestamp=T0 + at,
        received_at=T0 + at,
        context=Context(ip=ip, user_agent=ua),
        properties={},
    )
    ENRICH.enrich(event)
    return event


def engine() -> Engine:
    risk = LoginRisk(None, site_population())
    return Engine([NetworkVelocity(), risk, LoginAftermath()])


def aftermath(detections: list[Detection]) -> list[Detection]:
    return [d for d in detections if d.detector == "login_aftermath"]


def test_ordinary_sign_in_then_password_change_is_no_alert() -> None:
    # Legitimate users change their password too: after a sign-in that looks like them
    # the change alone stays below the thresholds.
    e = engine()
    janes_habits(e)
    day = timedelta(days=21)
    assert run(e, login("jane", HOME_IP, CHROME_MAC, day)) == []
    assert run(e, action("jane", "Password Changed", day + timedelta(minutes=5))) == []
    assert run(e, action("jane", "Email Changed", day + timedelta(minutes=8))) == []


def test_e_mail_change_after_a_doubtful_sign_in_raises_one_alert_naming_it() -> None:
    # Another ISP, weighed lightly here so that the sign-in itself is allowed; then the
    # e-mail address changes three minutes later.
    config = RiskConfig(weights={**RiskConfig().weights, "new_network": 0.0})
    e = Engine(
        [NetworkVelocity(config), LoginRisk(config, site_population()), LoginAftermath(config)]
    )
    janes_habits(e)
    at = timedelta(days=21)
    signed_in = login("jane", ATT_IP, CHROME_MAC, at)
    assert run(e, signed_in) == []  # allowed at the door
    (alert,) = aftermath(run(e, action("jane", "Email Changed", at + timedelta(minutes=3), ATT_IP)))
    assert alert.level == "medium" and alert.score >= 0.5
    assert alert.data["sign_in"] == signed_in.id and alert.data["action"] == "review"
    assert alert.data["sign_in_reasons"] == ["new_network"]
    (reason,) = alert.reasons
    assert reason.code == "email_change"
    assert reason.message == (
        "the e-mail address was changed 3 min after a sign-in showing new network"
    )
    # the same action again is not counted twice; a second one raises the level once
    assert aftermath(run(e, action("jane", "Email Changed", at + timedelta(minutes=4)))) == []
    (worse,) = aftermath(run(e, action("jane", "Password Changed", at + timedelta(minutes=5))))
    assert worse.level == "high" and [r.code for r in worse.reasons] == [
        "email_change",
        "password_change",
    ]
    assert aftermath(run(e, action("jane", "Data Exported", at + timedelta(minutes=6)))) == []


def test_actions_only_count_within_the_window_of_a_successful_sign_in() -> None:
    config = RiskConfig(weights={**RiskConfig().weights, "email_change": 20.0})
    e = Engine(
        [NetworkVelocity(config), LoginRisk(config, site_population()), LoginAftermath(config)]
    )
    janes_habits(e)
    late = timedelta(days=20, seconds=config.aftermath_window + 60)
    assert aftermath(run(e, action("jane", "Email Changed", late))) == []  # after the window
    fresh = Engine([NetworkVelocity(config), LoginRisk(config), LoginAftermath(config)])
    assert aftermath(run(fresh, action("nobody", "Email Changed", timedelta(0)))) == []
    failed = login("jane", HOME_IP, CHROME_MAC, timedelta(days=21), success=False)
    run(e, failed)
    state = e.lookup("jane")
    assert state is not None
    assert failed.id not in {s.sign_in for s in state.get(LoginAftermath).sessions}
    run(e, login("jane", HOME_IP, CHROME_MAC, timedelta(days=22)))
    (alert,) = aftermath(run(e, action("jane", "Email Changed", timedelta(days=22, minutes=1))))
    assert alert.level == "high"


def test_an_action_belongs_to_the_session_of_its_browser() -> None:
    # The attacker signs in on another ISP (allowed here), the owner signs in on the usual
    # laptop a minute later: the attacker's e-mail change is still scored with the
    # attacker's sign-in, not with the owner's ordinary one.
    config = RiskConfig(weights={**RiskConfig().weights, "new_network": 0.0})
    e = Engine(
        [NetworkVelocity(config), LoginRisk(config, site_population()), LoginAftermath(config)]
    )
    janes_habits(e)
    at = timedelta(days=21)
    intruder = login("jane", ATT_IP, CHROME_MAC, at)  # a proxy, the victim's browser
    owner = login("jane", HOME_IP, CHROME_MAC, at + timedelta(minutes=1))
    assert run(e, intruder, owner) == []
    change = action("jane", "Email Changed", at + timedelta(minutes=3), intruder.context.ip)
    (alert,) = aftermath(run(e, change))
    assert alert.data["sign_in"] == intruder.id
    # the owner's own change of password, from the laptop, belongs to the owner's session
    assert aftermath(run(e, action("jane", "Password Changed", at + timedelta(minutes=4)))) == []


def test_state_is_small_and_bounded() -> None:
    e = engine()
    janes_habits(e)
    for minute in range(10):
        run(e, login("jane", HOME_IP, CHROME_MAC, timedelta(days=21, minutes=minute)))
    state = e.lookup("jane")
    assert state is not None
    slot = state.get(LoginAftermath)
    assert len(slot.sessions) == 3
    blob = msgspec.msgpack.encode(slot)
    assert len(blob) < 300
    assert msgspec.msgpack.decode(blob, type=AftermathState) == slot
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(AftermathState()), type=AftermathState)


def test_listed_in_the_service_after_login_risk_and_alerted_by_default() -> None:
    processors: list[Processor[object]] = build_processors(NetworkVelocity(), LoginRisk())
    names = [p.name for p in processors]
    assert names.index("login_aftermath") > names.index("login_risk")
    assert AlertRule(name="default").matches("login_aftermath", "medium", ("email_change",))

"""``POST /v1/risk/login`` counts every answered attempt at once, and the same stream of
sign-ins gets the same scores at any speed, through the engine, and after a crash."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from livesupport import ADMIN_KEY, make_settings
from serverproc import ServerProcess
from usertide.engine import Engine
from usertide.enrich import build_enrichers
from usertide.evaluation.login_sim import LoginSimConfig, simulate_logins
from usertide.events import Context, Event
from usertide.risk import LoginRisk, NetworkVelocity, RiskConfig
from usertide.risk.history import MAX_FAILURES
from usertide.risk.now import assess_now
from usertide.server import BackgroundServer
from usertide.service import build_processors

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
HOME = "73.92.12.5"  # a US residential address (Comcast)
TOR_EXIT = "185.220.101.4"


def at(second: int) -> str:
    return datetime.fromtimestamp(1_764_583_200 + second, UTC).isoformat()


def attempt(user: str, ip: str, second: int, success: bool = True, **kw: Any) -> dict[str, Any]:
    return {
        "user_id": user,
        "ip": ip,
        "user_agent": kw.pop("ua", CHROME),
        "success": success,
        "timestamp": at(second),
        **kw,
    }


def post(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/risk/login", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def codes(answer: dict[str, Any]) -> set[str]:
    return {reason["code"] for reason in answer["reasons"]}


def test_a_burst_of_failures_is_brute_force_from_the_sixth_on(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(5):
            assert post(client, attempt("jane", HOME, i * 86_400))["action"] == "allow"
        start = 5 * 86_400
        answers = [
            post(client, attempt("jane", TOR_EXIT, start + i, success=False)) for i in range(12)
        ]
    flagged = ["brute_force" in codes(a) for a in answers]
    assert flagged == [False] * 5 + [True] * 7, [a["reasons"] for a in answers]
    for answer in answers[5:]:
        assert answer["action"] in ("challenge", "deny"), answer
    assert "5 failed sign-in attempts" in next(
        r["message"] for r in answers[5]["reasons"] if r["code"] == "brute_force"
    )


def test_credential_stuffing_from_one_network_within_a_burst(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answers = [
            post(client, attempt(f"victim{i}", f"45.133.1.{10 + i}", i, success=False))
            for i in range(12)
        ]
    config = RiskConfig()
    flagged = ["credential_stuffing" in codes(a) for a in answers]
    first = config.stuffing_users - 1
    assert flagged == [False] * first + [True] * (12 - first), [a["reasons"] for a in answers]
    assert all(a["action"] != "allow" for a in answers[first:])


def test_concurrent_attempts_on_one_account_are_each_counted_once(
    server: BackgroundServer,
) -> None:
    per_connection = 2

    async def hammer() -> list[dict[str, Any]]:
        async def one(connection: int) -> list[dict[str, Any]]:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                out = []
                for _ in range(per_connection):
                    body = attempt("bob", TOR_EXIT, 50, success=False)  # one instant
                    r = await client.post("/v1/risk/login", json=body, headers=ADMIN)
                    assert r.status_code == 200, r.text
                    out.append(r.json())
                return out

        results = await asyncio.gather(*(one(c) for c in range(8)))
        return [a for answers in results for a in answers]

    answers = asyncio.run(hammer())
    sent = 8 * per_connection
    # Serialised per account: every answer saw a different number of earlier failures.
    seen = sorted(
        next((r["data"]["failures"] for r in a["reasons"] if r["code"] == "brute_force"), 0)
        for a in answers
    )
    assert seen == [0] * 5 + list(range(5, sent)), seen
    with httpx.Client(base_url=server.url, timeout=10) as client:
        last = post(client, attempt("bob", TOR_EXIT, 100, success=False))
    assert f"{sent} failed sign-in attempts" in str(last["reasons"])
    server.service.runtime.wait_for(server.service.committer.last_offset)
    view = server.service.runtime.user("bob")
    # (the account keeps its last MAX_FAILURES failures: enough for any threshold)
    assert view is not None
    assert view["login_risk"]["recent_failures"] == min(sent + 1, MAX_FAILURES)


def test_kill_9_mid_burst_then_the_next_answer_counts_every_attempt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, USERTIDE_CHECKPOINT_INTERVAL="0.2").start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(3):
                post(client, attempt("carol", HOME, i * 86_400))
            for i in range(7):
                post(client, attempt("carol", TOR_EXIT, 3 * 86_400 + i, success=False))
                if i == 3:
                    time.sleep(0.5)  # a checkpoint lands mid-burst
        server.kill9()
        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answer = post(client, attempt("carol", TOR_EXIT, 3 * 86_400 + 30, success=False))
        assert "7 failed sign-in attempts" in str(answer["reasons"]), answer
        assert answer["action"] != "allow"
    finally:
        server.stop()


# -- determinism -----------------------------------------------------------------------


def simulated(count: int) -> list[dict[str, Any]]:
    """A stream from the sign-in simulator: residents, travellers, brute force, stuffing."""
    config = LoginSimConfig(users=40, days=12, seed=11, attacks_per_type=2, attacks_from=0.1)
    bodies = []
    for event in simulate_logins(config):
        context = event.get("context", {})
        bodies.append(
            {
                "user_id": event["userId"],
                "ip": context["ip"],
                "user_agent": context.get("userAgent", ""),
                "success": bool(event["properties"].get("success", True)),
                "timestamp": event["timestamp"],
                "event_id": event["messageId"],
            }
        )
    return bodies[:count]


def through_api(url: str, stream: list[dict[str, Any]], pause: float = 0.0) -> list[float]:
    with httpx.Client(base_url=url, timeout=10) as client:
        scores = []
        for body in stream:
            scores.append(post(client, body)["score"])
            if pause:
                time.sleep(pause)
        return scores


def through_engine(stream: list[dict[str, Any]]) -> tuple[list[float], dict[str, float]]:
    """The same sign-ins as ingested ``login`` events, applied by the service's engine:
    the score ``assess_now`` gives just before each is applied, and the scores of the
    engine's own detections."""
    config = RiskConfig()
    velocity, risk = NetworkVelocity(config), LoginRisk(config)
    engine = Engine(build_processors(velocity, risk))
    enrichers = build_enrichers(None, None, "truncate")
    scores: list[float] = []
    detected: dict[str, float] = {}
    for offset, body in enumerate(stream, start=1):
        when = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
        event = Event(
            id=body["event_id"],
            type="track",
            name="login",
            user_id=body["user_id"],
            timestamp=when,
            received_at=when,
            context=Context(ip=body["ip"], user_agent=body["user_agent"] or None),
            properties={"success": body["success"]},
            source="segment",
            offset=offset,
        )
        enrichers.enrich(event)
        scores.append(assess_now(engine, risk, velocity, event).score)
        for output in engine.apply(event):
            score = getattr(output, "score", None)
            if score is not None:
                detected[output.event_id] = score  # type: ignore[attr-defined]
    return scores, detected


def test_the_same_stream_gets_the_same_scores_at_any_speed(tmp_path: Path) -> None:
    stream = simulated(400)
    assert sum(not s["success"] for s in stream) > 40  # attacks and typos are in it
    fast = BackgroundServer(make_settings(tmp_path / "fast"))
    fast.start()
    try:
        at_full_speed = through_api(fast.url, stream)
    finally:
        fast.stop()
    # The same data dir again: the engine replays the log and must reach the same state.
    again = BackgroundServer(make_settings(tmp_path / "fast"))
    again.start()
    try:
        probe = {**stream[-1], "event_id": "probe", "timestamp": stream[-1]["timestamp"]}
        after_restart = through_api(again.url, [probe])
    finally:
        again.stop()
    paced = BackgroundServer(make_settings(tmp_path / "paced", load_linger=0.0))
    paced.start()
    try:
        at_ten_per_second = through_api(paced.url, stream[:40], pause=0.1)
        settled = []
        for start in range(40, len(stream), 8):  # in bursts the engine catches up after
            settled += through_api(paced.url, stream[start : start + 8])
            paced.service.runtime.wait_for(paced.service.committer.last_offset)
        slow = at_ten_per_second + settled
    finally:
        paced.stop()
    engine_scores, detections = through_engine(stream)

    def differing(a: list[float], b: list[float]) -> list[int]:
        return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if abs(x - y) > 1e-9]

    assert differing(at_full_speed, slow) == []
    assert differing(at_full_speed, engine_scores) == []
    for index, body in enumerate(stream):
        if body["event_id"] in detections:
            assert abs(detections[body["event_id"]] - at_full_speed[index]) <= 1e-9
    assert len(detections) > 10
    # The probe repeats the last attempt a moment later: scored from the replayed state
    # exactly as the uninterrupted server would.
    replay_engine, _ = through_engine([*stream, {**stream[-1], "event_id": "probe"}])
    assert abs(after_restart[0] - replay_engine[-1]) <= 1e-9

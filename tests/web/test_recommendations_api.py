"""Recommendations and the item catalogue over HTTP, on a real server."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from livesupport import WRITE_KEY, Live, make_settings
from usertide.server import BackgroundServer

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)


def viewed(visitor: str, item: str, at: float, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": visitor,
        "messageId": f"{visitor}-{item}-{at}",
        "timestamp": (T0 + timedelta(seconds=at)).isoformat(),
        "properties": {"product_id": item, **properties},
    }


def bought(visitor: str, item: str, at: float) -> dict[str, Any]:
    return {**viewed(visitor, item, at), "event": "Order Completed",
            "messageId": f"{visitor}-buy-{item}-{at}"}  # fmt: skip


def history() -> list[dict[str, Any]]:
    """Forty visitors who went shoe -> sock -> lace, ten who went hat -> scarf."""
    events = []
    for v in range(40):
        for k, item in enumerate(("shoe", "sock", "lace")):
            events.append(viewed(f"v{v}", item, v * 100 + k * 10, category="footwear"))
    for v in range(10):
        for k, item in enumerate(("hat", "scarf")):
            events.append(viewed(f"w{v}", item, 5_000 + v * 100 + k * 10, category="winter"))
    return events


def send(live: Live, events: list[dict[str, Any]]) -> None:
    r = live.client.post("/v1/batch", json={"batch": events}, headers=live.write)
    assert r.status_code == 200, r.text


def ask(live: Live, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    headers = live.write if headers is None else headers
    return live.client.get("/v1/recommendations", params=params, headers=headers)


def items(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [i["item_id"] for i in response.json()["items"]]


def test_the_next_item_follows_the_live_session_at_once(live: Live) -> None:
    send(live, history())
    # a new visitor's click is reflected in the very next request (no settle here)
    send(live, [viewed("new", "shoe", 9_000), viewed("new", "sock", 9_010)])
    r = ask(live, anonymous_id="new", n=3)
    body = r.json()
    assert items(r)[0] == "lace"
    assert body["recommender"] == "blend" and body["rec_id"].startswith("rec_")
    assert body["session_items"] == ["shoe", "sock"]
    assert body["items"][0]["properties"] == {"category": "footwear"}
    assert len(body["items"]) == 3
    # each recommender answers, by name
    for name in ("vsknn", "sr", "ar", "popular"):
        r = ask(live, anonymous_id="new", recommender=name, n=2)
        assert r.json()["recommender"] == name and len(items(r)) == 2
    # an unknown visitor gets the popular items (the cold start)
    assert items(ask(live, anonymous_id="nobody", n=2)) == ["shoe", "sock"]
    similar = live.client.get("/v1/items/hat/similar", params={"n": 1}, headers=live.write)
    assert similar.status_code == 200 and [i["item_id"] for i in similar.json()["items"]] == [
        "scarf"
    ]
    assert live.client.get("/v1/items/nope/similar", headers=live.write).status_code == 404


def test_business_rules_exclusions_filters_and_availability(live: Live) -> None:
    send(live, [*history(), bought("b", "lace", 9_000), viewed("b", "shoe", 9_010)])
    assert "lace" not in items(ask(live, anonymous_id="b", n=10))  # bought already
    assert "sock" not in items(ask(live, anonymous_id="b", n=10, exclude="sock,x"))
    assert "shoe" not in items(ask(live, anonymous_id="b", n=10, exclude_seen="true"))
    winter = items(ask(live, anonymous_id="b", n=10, filter="category:Winter"))
    assert set(winter) == {"hat", "scarf"}
    r = live.client.post(
        "/v1/items",
        json={"items": [{"item_id": "sock", "available": False},
                        {"item_id": "boot", "properties": {"category": "footwear"}}]},
        headers=live.admin,
    )  # fmt: skip
    assert r.status_code == 200 and r.json() == {"items": 2}
    assert "sock" not in items(ask(live, anonymous_id="b", n=10))
    got = live.client.get("/v1/items/boot", headers=live.admin)
    assert got.json()["properties"] == {"category": "footwear"} and got.json()["available"]
    assert live.store.items_all()[0].item_id == "boot"


def test_access_scopes_and_bad_parameters(live: Live) -> None:
    send(live, history())
    live.settle()
    assert ask(live, headers={}, anonymous_id="v1").status_code == 401
    bad_key = base64.b64encode(b"utw_wrong:").decode()
    assert (
        ask(live, headers={"Authorization": f"Basic {bad_key}"}, anonymous_id="v1").status_code
        == 401
    )
    r = ask(live, user_id="jane")  # the write key is public: not for identified users
    assert r.status_code == 403
    assert ask(live, headers=live.admin, user_id="jane").status_code == 200
    r = live.client.get("/v1/recommendations", params={"anonymous_id": "v1", "key": WRITE_KEY})
    assert r.status_code == 200  # the snippet's form: the key as a parameter
    for params in (
        {},
        {"anonymous_id": "v1", "session_id": "s"},
        {"anonymous_id": "v1", "n": "0"},
        {"anonymous_id": "v1", "n": "x"},
        {"anonymous_id": "v1", "filter": "category"},
        {"anonymous_id": "v1", "recommender": "nope"},
        {"anonymous_id": "v1", "exclude_seen": "maybe"},
    ):
        r = ask(live, **params)
        assert r.status_code == 400, params
        assert r.json()["error"]["code"] == "invalid_parameter"
    assert live.client.post("/v1/items", json={"items": []}, headers=live.admin).status_code == 400
    r = live.client.post("/v1/items", json={"item_id": 3}, headers=live.admin)
    assert r.status_code == 400 and "item_id" in r.json()["error"]["message"]
    assert (
        live.client.post("/v1/items", json={"item_id": "a"}, headers=live.write).status_code == 401
    )


@pytest.mark.parametrize(
    "live", [{"rec_rate_limit_rps": 1.0, "rec_rate_limit_burst": 3.0}], indirect=True
)
def test_the_write_key_scope_is_rate_limited(live: Live) -> None:
    codes = [ask(live, anonymous_id="v1").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[-1] == 429
    r = ask(live, anonymous_id="v1")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert ask(live, headers=live.admin, anonymous_id="v1").status_code == 200  # admins aren't


def test_a_restart_rebuilds_the_same_recommenders(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    answers = []
    for _ in range(2):
        server = BackgroundServer(settings)
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                live = Live(server.url, server.service, settings, client)
                if not answers:
                    send(live, [*history(), viewed("q", "hat", 9_000)])
                    live.settle()
                    live.service.runtime.checkpoint()
                answers.append(ask(live, anonymous_id="q", n=5, recommender="vsknn").json())
                learned = live.service.recommendations.learned
        finally:
            server.stop()
    assert (
        answers[0]["items"] == answers[1]["items"] and answers[0]["items"][0]["item_id"] == "scarf"
    )
    assert learned == 40 * 3 + 10 * 2 + 1


def test_click_through_per_recommender(live: Live) -> None:
    def rec(event: str, visitor: str, rec_id: str, recommender: str, at: float,
            **properties: Any) -> dict[str, Any]:  # fmt: skip
        return {
            "type": "track", "event": event, "anonymousId": visitor,
            "messageId": f"{event}-{rec_id}-{at}",
            "timestamp": (T0 + timedelta(seconds=at)).isoformat(),
            "properties": {"rec_id": rec_id, "recommender": recommender, **properties},
        }  # fmt: skip

    shown, clicked = "Recommendation Shown", "Recommendation Clicked"
    send(live, [
        rec(shown, "a", "r1", "blend", 0, item_ids=["x", "y"]),
        rec(clicked, "a", "r1", "blend", 5, item_id="x"),
        rec(clicked, "a", "r1", "blend", 6, item_id="y"),  # two clicks, one clicked answer
        rec(shown, "b", "r2", "blend", 3_700, item_ids=["x"]),
        rec(shown, "c", "r3", "sr", 10, item_ids=["z"]),
        rec(shown, "c", "r4", "sr", 20, item_ids=["z"]),
        rec(clicked, "c", "r4", "sr", 30, item_id="z"),
    ])  # fmt: skip
    live.settle()
    params = {"since": "2026-11-20T00:00:00Z", "until": "2026-11-21T00:00:00Z"}
    r = live.client.get("/v1/recommendations/stats", params=params, headers=live.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    by_name = {s["recommender"]: s for s in body["recommenders"]}
    assert by_name["blend"]["impressions"] == 2 and by_name["blend"]["clicks"] == 2
    assert by_name["blend"]["ctr"] == 0.5 and by_name["sr"]["ctr"] == 0.5
    assert 0 < by_name["blend"]["ctr_low"] < 0.5 < by_name["blend"]["ctr_high"] < 1
    hours = [(p["time"][11:16], p["recommender"], p["impressions"]) for p in body["series"]]
    assert hours == [("09:00", "blend", 1), ("09:00", "sr", 2), ("10:00", "blend", 1)]
    # rec events are about recommendations, not items: nothing was learned from them
    assert live.service.recommendations.learned == 0
    assert live.client.get("/v1/recommendations/stats", headers=live.write).status_code == 401
    bad = {**params, "bucket": "week"}
    assert live.client.get("/v1/recommendations/stats", params=bad,
                           headers=live.admin).status_code == 400  # fmt: skip

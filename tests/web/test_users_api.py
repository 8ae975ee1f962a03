"""Users API: tags and segments on a user, and finding users (GET /v1/users)."""

from __future__ import annotations

from typing import Any

import pytest

from livesupport import Live


def send(live: Live, items: list[dict[str, Any]]) -> None:
    r = live.client.post("/v1/batch", json={"batch": items}, headers=live.write)
    assert r.status_code == 200, r.text
    live.settle()
    # Search reads the profiles checkpoints write: take one now rather than wait for it.
    live.service.runtime.checkpoint()


def track(user: str, name: str, at: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": name,
        "timestamp": at,
        "properties": properties,
    }


@pytest.fixture
def people(live: Live) -> Live:
    send(
        live,
        [
            {
                "type": "identify",
                "userId": "jane",
                "traits": {"email": "Jane.Doe@Example.com", "name": "Jane Doe"},
                "timestamp": "2026-11-20T10:00:00Z",
            },
            *(
                track("jane", "Order Completed", f"2026-11-20T10:0{i + 1}:00Z", revenue=250)
                for i in range(3)
            ),
            {
                "type": "identify",
                "userId": "bob",
                "traits": {"email": "bob@corp.test"},
                "timestamp": "2026-11-20T11:00:00Z",
            },
            {
                "type": "page",
                "anonymousId": "visitor-1",
                "properties": {"path": "/", "category": "Shoes"},
                "timestamp": "2026-11-20T12:00:00Z",
            },
            *(track(f"user{i}", "click", "2026-11-20T13:00:00Z") for i in range(3)),
        ],
    )
    return live


def search(live: Live, query: str = "") -> dict[str, Any]:
    r = live.client.get(f"/v1/users{query}", headers=live.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def ids(body: dict[str, Any]) -> list[str | None]:
    return [u["user_id"] or u["anonymous_id"] for u in body["users"]]


def test_the_user_shows_tags_and_segments(people: Live) -> None:
    body = people.client.get("/v1/users/jane", headers=people.admin).json()
    assert body["tags"] == ["loyal", "big-spender"]
    assert body["tag_reasons"]["big-spender"] == "spent 750.00 in 3 purchases (≥ 500)"
    rfm = body["segments"]["rfm"]
    assert rfm["segment"] == "loyal" and rfm["purchases"] == 3 and rfm["revenue"] == 750
    assert rfm["as_of"] == "2026-11-20T10:03:00Z"
    assert body["profile"]["traits"]["email"] == "Jane.Doe@Example.com"


def test_search_by_id_trait_and_tag(people: Live) -> None:
    everyone = search(people)
    assert ids(everyone) == ["visitor-1", "bob", "jane", "user0", "user1", "user2"]
    assert everyone["next_cursor"] is None
    jane = next(u for u in everyone["users"] if u["user_id"] == "jane")
    assert jane == {
        "user_id": "jane",
        "anonymous_id": None,
        "anonymous": False,
        "tags": ["loyal", "big-spender"],
        "traits": {"email": "Jane.Doe@Example.com", "name": "Jane Doe"},
        "last_seen": "2026-11-20T10:03:00Z",
    }
    visitor = everyone["users"][0]
    assert visitor["anonymous"] is True and visitor["user_id"] is None
    assert visitor["tags"] == ["new"]  # one category view: not yet an interest
    assert ids(search(people, "?search=USER")) == ["user0", "user1", "user2"]
    assert ids(search(people, "?search=example.com")) == ["jane"]
    assert ids(search(people, "?search=doe")) == ["jane"]
    assert ids(search(people, "?search=Visitor")) == ["visitor-1"]
    assert ids(search(people, "?tag=big-spender")) == ["jane"]
    assert ids(search(people, "?tag=new&search=bob")) == ["bob"]
    assert search(people, "?search=nobody") == {"users": [], "next_cursor": None}


def test_pages_with_an_opaque_cursor(people: Live) -> None:
    seen: list[str | None] = []
    cursor: str | None = None
    pages = 0
    while True:
        body = search(people, "?limit=4" + (f"&cursor={cursor}" if cursor else ""))
        seen += ids(body)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert "user" not in cursor and "jane" not in cursor  # opaque, not the key
    assert pages == 2
    assert seen == ids(search(people))
    # exactly a page's worth: no empty page after it
    assert search(people, "?limit=6")["next_cursor"] is None
    first = search(people, "?search=user&limit=2")
    assert ids(first) == ["user0", "user1"]
    rest = search(people, f"?search=user&limit=2&cursor={first['next_cursor']}")
    assert ids(rest) == ["user2"] and rest["next_cursor"] is None


def test_search_follows_the_engine(people: Live) -> None:
    send(people, [track("bob", "buy", f"2026-11-21T10:0{i}:00Z", revenue=600) for i in range(3)])
    assert ids(search(people, "?tag=big-spender")) == ["bob", "jane"]
    assert people.client.delete("/v1/users/jane", headers=people.admin).status_code == 200
    assert ids(search(people, "?tag=big-spender")) == ["bob"]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=-1", "limit"),
        ("?cursor=%21%21", "cursor"),
        ("?cursor=", "cursor"),
        ("?cursor=amFuZQ%3D%3D", "cursor"),  # padded: not what next_cursor gives
        ("?cursor=_w", "cursor"),  # not UTF-8
        ("?search=" + "x" * 257, "search"),
        ("?search=a%00b", "search"),
        ("?tag=" + "t" * 101, "tag"),
        ("?tag=%1F", "tag"),
    ],
)
def test_invalid_parameters_are_named(live: Live, query: str, name: str) -> None:
    r = live.client.get(f"/v1/users{query}", headers=live.admin)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_parameter" and f"'{name}'" in error["message"]


def test_an_admin_key_is_required(live: Live) -> None:
    r = live.client.get("/v1/users")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert live.client.get("/v1/users", headers={"Authorization": "Bearer no"}).status_code == 401
    assert live.client.get("/v1/users", headers=live.write).status_code == 401

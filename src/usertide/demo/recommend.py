"""The demo's recommendations: a visitor's list changing as they browse, and the
click-through of each recommender in a small online test.

1. A shopper's path from the stored interactions is walked again by a new visitor, one
   product at a time through the HTTP API; after each click the top five are asked for
   (as the page's snippet would) and printed.
2. New visitors of the same shop (a second, short run of the simulator) each get one
   recommender (blend, sequential rules or popularity, in turn); at every product they
   view, the page shows that recommender's top five (``Recommendation Shown``), and when
   the product they go on to view was among them, they click it (``Recommendation
   Clicked``). ``GET /v1/recommendations/stats`` then gives each recommender's
   click-through, with its interval.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from usertide.demo.simulator import Simulation, SimulationConfig
from usertide.processors.items import REC_CLICKED, REC_SHOWN
from usertide.service import Service

SHOWN = 5
ARMS = ("blend", "sr", "popular")


def _view(visitor: str, item: str, at: datetime, n: int) -> dict[str, Any]:
    return {
        "type": "track", "event": "Product Viewed", "anonymousId": visitor,
        "messageId": f"{visitor}-view-{n}", "timestamp": at.isoformat(),
        "properties": {"product_id": item},
    }  # fmt: skip


def _name(answer_item: dict[str, Any]) -> str:
    properties = answer_item.get("properties") or {}
    name = properties.get("name") or answer_item["item_id"]
    return str(name)[:28]


def print_live_visitor(console: Console, service: Service, url: str, write_key: str) -> None:
    path = _a_path(service)
    if not path:
        return
    auth = httpx.BasicAuth(write_key, "")
    table = Table(title="recommendations as a new visitor browses (GET /v1/recommendations)")
    table.add_column("viewed")
    table.add_column(f"top {SHOWN} now (blend)")
    now = datetime.now(UTC)
    with httpx.Client(base_url=url, timeout=30) as client:
        for n, item in enumerate(path):
            client.post("/v1/track", json=_view("demo-visitor", item, now, n), auth=auth)
            answer = client.get(
                "/v1/recommendations", params={"anonymous_id": "demo-visitor", "n": SHOWN},
                auth=auth,
            ).json()  # fmt: skip
            viewed = service.recommendations.item(item)
            label = str((viewed.properties.get("name") if viewed else None) or item)[:28]
            table.add_row(label, ", ".join(_name(i) for i in answer["items"]))
            now += timedelta(seconds=20)
    console.print(table)


def _a_path(service: Service, length: int = 4) -> list[str]:
    """Four distinct products a stored shopper viewed in one session, in order."""
    by_session: dict[str, list[str]] = {}
    for interaction in service.store.interactions(limit=20_000):
        if interaction.kind == "view":
            items = by_session.setdefault(interaction.session_id, [])
            if interaction.item_id not in items:
                items.append(interaction.item_id)
    for items in by_session.values():
        if len(items) >= length:
            return items[:length]
    return []


def print_click_through(
    console: Console, url: str, write_key: str, admin_key: str, seed: int, users: int = 300
) -> None:
    start = datetime.now(UTC) - timedelta(hours=3)
    sim = Simulation(
        SimulationConfig(users=users, days=0.1, seed=seed, start=start, bot_share=0.0, takeovers=0)
    )
    paths: dict[str, list[tuple[str, str]]] = {}
    for event in sim.events():
        item = (event.get("properties") or {}).get("product_id")
        if event.get("event") == "Product Viewed" and isinstance(item, str):
            visitor = "ab-" + str(event.get("anonymousId") or event.get("userId"))
            paths.setdefault(visitor, []).append((item, str(event["timestamp"])))
    auth = httpx.BasicAuth(write_key, "")
    admin = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        for visitor, views in paths.items():
            arm = ARMS[zlib.crc32(visitor.encode()) % len(ARMS)]
            for n, (item, at) in enumerate(views):
                event = _view(visitor, item, datetime.fromisoformat(at), n)
                client.post("/v1/track", json=event, auth=auth)
                if n + 1 == len(views):
                    break
                answer = client.get(
                    "/v1/recommendations",
                    params={"anonymous_id": visitor, "n": SHOWN, "recommender": arm},
                    headers=admin,
                ).json()
                shown = [i["item_id"] for i in answer["items"]]
                base = {"rec_id": answer["rec_id"], "recommender": arm}
                batch = [_rec(visitor, REC_SHOWN, at, {**base, "item_ids": shown})]
                if views[n + 1][0] in shown:
                    batch.append(
                        _rec(visitor, REC_CLICKED, at, {**base, "item_id": views[n + 1][0]})
                    )
                client.post("/v1/batch", json={"batch": batch}, auth=auth)
        window = {"since": (start - timedelta(hours=1)).isoformat(), "bucket": "day"}
        stats = client.get("/v1/recommendations/stats", params=window, headers=admin).json()
    table = Table(title="click-through per recommender (new visitors, one recommender each)")
    for column in ("recommender", "answers shown", "clicked", "click-through", "95 % interval"):
        table.add_column(column, justify="left" if column == "recommender" else "right")
    for r in stats["recommenders"]:
        if r["ctr"] is None:
            continue
        table.add_row(
            r["recommender"], f"{r['impressions']:,}", f"{r['clicked_impressions']:,}",
            f"{r['ctr']:.1%}", f"{r['ctr_low']:.1%} – {r['ctr_high']:.1%}",
        )  # fmt: skip
    console.print(table)
    console.print(
        "[dim]The simulated shoppers pick products mostly by popularity within a category, "
        "so popularity does well here; on real sessions (yoochoose) the blend ranks best "
        "(docs/recommendations.md). Which wins on your shop is what this test is for.[/dim]"
    )


def _rec(visitor: str, name: str, at: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "track", "event": name, "anonymousId": visitor, "timestamp": at,
        "messageId": f"{visitor}-{name}-{properties['rec_id']}", "properties": properties,
    }  # fmt: skip

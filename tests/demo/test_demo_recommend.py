"""The demo's recommendation part on a real server: a visitor's list as they browse,
and the click-through of each recommender."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Console

from livesupport import ADMIN_KEY, WRITE_KEY, Live
from usertide.demo.recommend import ARMS, print_click_through, print_live_visitor
from usertide.demo.simulator import Simulation, SimulationConfig


def test_the_demo_shows_live_lists_and_click_through(live: Live) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    sim = Simulation(SimulationConfig(users=60, days=0.5, seed=3, start=start, takeovers=0))
    events = list(sim.events())
    for i in range(0, len(events), 500):
        r = live.client.post("/v1/batch", json={"batch": events[i : i + 500]}, headers=live.write)
        assert r.status_code == 200
    live.settle()
    live.service.runtime.checkpoint()  # the path is taken from the stored interactions
    console = Console(record=True, width=140)
    print_live_visitor(console, live.service, live.url, WRITE_KEY)
    print_click_through(console, live.url, WRITE_KEY, ADMIN_KEY, seed=3, users=20)
    text = console.export_text()
    assert "recommendations as a new visitor browses" in text
    assert text.count("│") > 20  # rows were printed
    stats = live.client.get("/v1/recommendations/stats", headers=live.admin).json()
    assert {r["recommender"] for r in stats["recommenders"]} <= set(ARMS)
    assert sum(r["impressions"] for r in stats["recommenders"]) > 20

"""The live path equals the offline one: a session file replayed through the HTTP API
gives ``usertide eval recommend --online``'s ranks (and so its HR@20)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from livesupport import ADMIN_KEY, WRITE_KEY, Live
from usertide.evaluation.recommend_data import Event, sessions
from usertide.evaluation.recommend_eval import evaluate_sessions
from usertide.evaluation.recommend_replay import replay

T0 = 1_700_000_000.0


def walks(count: int, seed: int, start: float) -> list[Event]:
    """Sessions of 2-6 clicks, each a random walk on a ring of 40 items (mostly forward),
    with a few items only the later sessions have (dropped from the test as unseen)."""
    rng = np.random.default_rng(seed)
    out: list[Event] = []
    for s in range(count):
        item = int(rng.integers(40))
        t = start + s * 300.0
        for _ in range(int(rng.integers(2, 7))):
            name = f"i{item}" if rng.random() > 0.03 else f"new{rng.integers(5)}"
            out.append((f"{seed}-{s}", name, t))
            item = (item + int(rng.choice([1, 1, 1, 2, -1]))) % 40
            t += float(rng.uniform(5, 60))
    return out


@pytest.mark.parametrize("live", [{"load_linger": 0.0}], indirect=True)
@pytest.mark.parametrize("recommender", ["blend", "sr"])
def test_replaying_through_the_api_ranks_as_the_online_evaluation(
    live: Live, recommender: str
) -> None:
    train = walks(150, 1, T0)
    test = sessions(walks(40, 2, T0 + 150 * 300.0))
    offline = evaluate_sessions(train, test, [recommender], online=True)
    got = replay(live.client, httpx.BasicAuth(WRITE_KEY, ""), ADMIN_KEY, train, test, recommender)
    assert len(got.ranks) == offline.protocol.points > 80
    assert got.hit_rate() == pytest.approx(offline.results[0].metrics["HR@20"], abs=1e-12)
    assert got.mrr() == pytest.approx(offline.results[0].metrics["MRR@20"], abs=1e-12)
    assert 0.3 < got.hit_rate() < 1.0  # the walk is learnable, not trivial

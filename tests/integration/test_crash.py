"""kill -9 mid-load: nothing acknowledged is lost or doubled, and the engine resumes
to the same state as an uninterrupted run over the same log."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from serverproc import ServerProcess
from usertide.demo import Simulation, SimulationConfig
from usertide.engine import Engine
from usertide.risk import LoginRisk, NetworkVelocity
from usertide.service import build_processors
from usertide.store import DuckDBStore

pytestmark = pytest.mark.slow


def batches() -> list[list[dict[str, Any]]]:
    start = datetime.now(UTC) - timedelta(days=1)
    sim = Simulation(SimulationConfig(users=300, days=1.0, seed=11, start=start))
    return list(sim.batches(50))


def send_all(
    url: str, work: list[list[dict[str, Any]]], acked: set[str], stop: threading.Event
) -> list[list[dict[str, Any]]]:
    """Sends batches until stopped; returns those not acknowledged."""
    pending = list(work)
    with httpx.Client(base_url=url, timeout=5) as client:
        while pending and not stop.is_set():
            batch = pending[0]
            try:
                r = client.post(
                    "/v1/batch", json={"batch": batch, "writeKey": "utw_test_write_key"}
                )
            except httpx.TransportError:
                return pending
            if r.status_code == 200:
                acked.update(e["messageId"] for e in batch)
                pending.pop(0)
    return pending


def test_kill_9_mid_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    work = batches()
    shares = [work[i::3] for i in range(3)]
    acked: set[str] = set()
    server = ServerProcess(data, USERTIDE_CHECKPOINT_INTERVAL="0.2").start()
    stop = threading.Event()
    leftovers: list[list[list[dict[str, Any]]]] = [[] for _ in shares]

    def worker(i: int) -> None:
        leftovers[i] = send_all(server.url, shares[i], acked, stop)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    while len(acked) < 3_000:
        time.sleep(0.01)
    server.kill9()  # mid-load: requests are in flight
    for t in threads:
        t.join()
    acked_before = len(acked)
    assert acked_before < sum(len(b) for b in work), "the load finished before the kill"

    server = ServerProcess(data, port=server.port).start()
    try:
        for rest in leftovers:  # clients retry what was not acknowledged
            assert send_all(server.url, rest, acked, threading.Event()) == []
        server.wait_settled()
    finally:
        server.stop()  # graceful: the engine writes a final checkpoint

    store = DuckDBStore(data / "usertide.duckdb")
    store.migrate()
    try:
        log = list(store.read_log_iter(0))
        ids = [e.id for e in log]
        assert len(ids) == len(set(ids)), "an event was stored twice"
        assert acked <= set(ids), "an acknowledged event was lost"
        assert len(acked) == sum(len(b) for b in work)

        uninterrupted = Engine(build_processors(NetworkVelocity(), LoginRisk()))
        for event in log:
            uninterrupted.apply(event)
        expected = {k: uninterrupted.codec_of(k).encode(s) for k, s in uninterrupted.hot.items()}
        stored = dict(store.iter_states())
        assert stored.keys() == expected.keys()
        assert stored == expected
        assert store.engine_offset("engine") == log[-1].offset
        assert store.aliases() == uninterrupted.identity.aliases
    finally:
        store.close()

"""A retrained population snapshot takes effect where the log says: a replay scores
every sign-in with the snapshot that scored it the first time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from usertide.engine import Engine
from usertide.engine.core import MODELS_KEY
from usertide.enrich import build_enrichers
from usertide.evaluation.login_sim import LoginSimConfig, simulate_logins
from usertide.events import Context, Event
from usertide.risk import LoginRisk, NetworkVelocity, RiskConfig
from usertide.risk.now import assess_now
from usertide.risk.trainer import MODEL_NAME, PopulationTrainer
from usertide.service import build_processors
from usertide.store import DuckDBStore, EngineCommit


def sign_ins(count: int) -> list[Event]:
    enrichers = build_enrichers(None, None, "truncate")
    out = []
    for item in simulate_logins(LoginSimConfig(users=60, days=10, seed=5)):
        when = datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00"))
        event = Event(
            id=item["messageId"],
            type="track",
            name="login",
            user_id=item["userId"],
            timestamp=when,
            received_at=when,
            context=Context(ip=item["context"]["ip"], user_agent=item["context"]["userAgent"]),
            properties={"success": item["properties"]["success"]},
            source="segment",
        )
        enrichers.enrich(event)
        out.append(event)
        if len(out) == count:
            break
    return out


def store_copies(store: DuckDBStore, events: list[Event]) -> None:
    # (the store numbers what it appends: copies, so the log keeps its own offsets)
    store.append_events([msgspec.structs.replace(e) for e in events])


class Rig:
    """The service's engine and trainer over one store, the log as a list."""

    def __init__(self, store: DuckDBStore) -> None:
        config = RiskConfig()
        self.velocity, self.risk = NetworkVelocity(config), LoginRisk(config)
        self.store = store
        self.trainer = PopulationTrainer(store, self.risk, interval=0)
        self.engine = Engine(
            build_processors(self.velocity, self.risk), models={MODEL_NAME: self.trainer.activate}
        )

    def score_and_apply(self, log: list[Event]) -> list[float]:
        scores = []
        for event in log:
            if event.source == "segment":
                scores.append(assess_now(self.engine, self.risk, self.velocity, event).score)
            self.engine.apply(event)
        return scores


def test_a_replay_across_a_retrain_scores_as_the_first_run(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "store.duckdb")
    store.migrate()
    events = sign_ins(900)
    log: list[Event] = []
    live = Rig(store)
    live.trainer.announce = log.append
    first: list[float] = []
    parts = (events[:300], events[300:600], events[600:])
    for number, part in enumerate(parts):
        for event in part:
            event.offset = len(log) + 1
            log.append(event)
        first += live.score_and_apply(log[-len(part) :])
        store_copies(store, part)  # what the trainer reads, as the loader would store it
        if number < len(parts) - 1:
            announced = len(log)
            live.trainer.train_once()  # appends its $model event to the log
            assert len(log) == announced + 1
            log[-1].offset = len(log)
            live.score_and_apply(log[-1:])
    assert live.risk.population.version == 2
    assert [e.properties["version"] for e in log if e.name == "$model"] == [1, 2]

    # A fresh process: the latest snapshot (v2) is what a naive restart would use.
    replay = Rig(store)
    replay.trainer.load_latest()
    assert replay.risk.population.version == 2
    replay.engine.restore(0, iter(()), {})
    assert replay.score_and_apply(log) == first

    naive = Rig(store)
    naive.trainer.load_latest()
    naive.engine.models = {}
    plain = [e for e in log if e.name != "$model"]
    assert naive.score_and_apply(plain) != first  # the snapshot matters: this test can fail


def test_the_version_in_force_is_checkpointed_and_restored(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "store.duckdb")
    store.migrate()
    events = sign_ins(200)
    rig = Rig(store)
    log: list[Event] = []
    rig.trainer.announce = log.append
    store_copies(store, events)
    for i, event in enumerate(events, start=1):
        event.offset = i
        rig.engine.apply(event)
    rig.trainer.train_once()
    model = log[-1]
    model.offset = len(events) + 1
    rig.engine.apply(model)
    commit = rig.engine.take_commit()
    assert isinstance(commit, EngineCommit) and MODELS_KEY in commit.states
    store.commit_engine(commit)
    store.model_put(MODEL_NAME, 2, store.model_get(MODEL_NAME, 1) or b"")  # a later one

    restarted = Rig(store)
    restarted.trainer.load_latest()  # v2, the latest stored
    restarted.engine.restore(
        store.engine_offset(restarted.engine.consumer), store.iter_states(), store.aliases()
    )
    assert restarted.risk.population.version == 1  # the version in force at the checkpoint
    assert restarted.engine.models == {MODEL_NAME: 1}
    # A $model event from a client (any other source) changes nothing.
    when = datetime(2026, 1, 1, tzinfo=UTC)
    spoof = Event(
        id="spoof",
        type="track",
        name="$model",
        user_id="mallory",
        timestamp=when,
        received_at=when + timedelta(seconds=1),
        properties={"model": MODEL_NAME, "version": 2},
        source="segment",
        offset=10_000,
    )
    restarted.engine.apply(spoof)
    assert restarted.risk.population.version == 1


def test_the_service_activates_a_retrain_through_its_log(tmp_path: Path) -> None:
    import httpx

    from livesupport import ADMIN_KEY, make_settings
    from usertide.server import BackgroundServer

    server = BackgroundServer(make_settings(tmp_path / "data"))
    server.start()
    try:
        service = server.service
        body = {"user_id": "jane", "ip": "73.92.12.5", "timestamp": "2026-11-20T10:00:00Z"}
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert httpx.post(f"{server.url}/v1/risk/login", json=body, headers=headers).is_success
        service.loader.wait_for(service.committer.last_offset)
        service.trainer.train_once()
        assert service.runtime.wait_for(service.committer.last_offset)
        assert service.login_risk.population.version == 1
        assert service.runtime.engine.models[MODEL_NAME] == 1
    finally:
        server.stop()
    again = BackgroundServer(make_settings(tmp_path / "data"))
    again.start()
    try:
        assert again.service.login_risk.population.version == 1
    finally:
        again.stop()

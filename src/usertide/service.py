"""The embedded service: store, log, engine and enrichment wired together."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from usertide.capture.ratelimit import RateLimiter
from usertide.config import Settings
from usertide.engine import EmbeddedRuntime, Engine
from usertide.enrich import EnrichmentPipeline, build_enrichers
from usertide.keys import KeyRing
from usertide.log import GroupCommitter
from usertide.metrics import Metrics
from usertide.processors import BehaviourFeatures, Profile, Sessionizer
from usertide.store import DuckDBStore, Store

log = logging.getLogger(__name__)


@dataclass
class NewKeys:
    admin: str | None = None
    write: str | None = None


@dataclass
class Service:
    settings: Settings
    store: Store
    metrics: Metrics
    keys: KeyRing
    committer: GroupCommitter
    runtime: EmbeddedRuntime
    enrichers: EnrichmentPipeline
    limiter: RateLimiter
    new_keys: NewKeys = field(default_factory=NewKeys)
    started: bool = False

    @classmethod
    def create(cls, settings: Settings, store: Store | None = None) -> Service:
        if store is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            store = DuckDBStore(settings.db_path)
        metrics = Metrics()
        engine = Engine([Sessionizer(), BehaviourFeatures(), Profile()])
        runtime = EmbeddedRuntime(
            store, engine, metrics=metrics, checkpoint_interval=settings.checkpoint_interval
        )
        committer = GroupCommitter(
            store,
            on_commit=runtime.submit,
            metrics=metrics,
            max_pending_events=settings.max_pending_events,
        )
        return cls(
            settings=settings,
            store=store,
            metrics=metrics,
            keys=KeyRing(store),
            committer=committer,
            runtime=runtime,
            enrichers=build_enrichers(
                settings.geoip_city_db, settings.geoip_asn_db, settings.ip_policy
            ),
            limiter=RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst),
        )

    def start(self) -> None:
        if self.started:
            return
        self.store.migrate()
        # Load the geo/ASN data now rather than on the first request (~0.3 s).
        self.enrichers.warm()
        self.new_keys = NewKeys(
            admin=self.keys.ensure("admin", self.settings.admin_key),
            write=self.keys.ensure("write", self.settings.write_key),
        )
        # The engine subscribes to commits before it replays, so nothing falls between.
        self.runtime.start()
        self.committer.start()
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        self.committer.stop()
        self.runtime.stop()
        self.store.close()
        self.started = False

"""The embedded service: store, log, engine and enrichment wired together."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from usertide.alerts.manager import AlertManager, Recipients
from usertide.anomaly.detectors import detector
from usertide.anomaly.session import MODEL_NAME as SESSION_MODEL
from usertide.anomaly.session import SessionAnomaly, SessionModels
from usertide.anomaly.traffic import TrafficConfig, traffic_processors
from usertide.anomaly.trainer import SessionTrainer
from usertide.capture.ratelimit import RateLimiter
from usertide.config import Settings
from usertide.engine import EmbeddedRuntime, Engine, Processor
from usertide.enrich import EnrichmentPipeline, build_enrichers
from usertide.keys import KeyRing
from usertide.live import Broadcaster
from usertide.log import GroupCommitter, Loader, SegmentLog, open_segments
from usertide.metrics import Metrics
from usertide.models import ModelRegistry
from usertide.notify import (
    LinkSigner,
    Notifier,
    OutboxWorker,
    SmtpConfig,
    SmtpNotifier,
    WebhookConfig,
    WebhookNotifier,
)
from usertide.notify.files import FileEmailNotifier
from usertide.processors import BehaviourFeatures, Profile, Sessionizer
from usertide.processors.items import ItemConfig, ItemInteractions
from usertide.processors.search import SearchRecord
from usertide.processors.session_record import SessionRecorder
from usertide.processors.tags import UserTags, load_rules
from usertide.propensity.goal import Goal
from usertide.propensity.model import MODEL_NAME as CONVERSION_MODEL
from usertide.propensity.model import ConversionModels, ConversionTrainer
from usertide.propensity.tracker import ConversionTracker
from usertide.recommend.live import LiveRecommendations
from usertide.recommend.pending import LatestEvents
from usertide.risk import LoginAftermath, LoginRisk, NetworkVelocity, RiskConfig
from usertide.risk.inflight import InFlight
from usertide.risk.now import sign_in_keys
from usertide.risk.trainer import MODEL_NAME as POPULATION_MODEL
from usertide.risk.trainer import PopulationTrainer
from usertide.secrets import load_or_create
from usertide.store import DuckDBStore, Store
from usertide.store.base import EraseReport

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
    segments: SegmentLog
    loader: Loader
    committer: GroupCommitter
    runtime: EmbeddedRuntime
    enrichers: EnrichmentPipeline
    limiter: RateLimiter
    login_risk: LoginRisk
    network_velocity: NetworkVelocity
    alerts: AlertManager
    trainer: PopulationTrainer
    inflight: InFlight
    registry: ModelRegistry
    session_trainer: SessionTrainer
    conversion_trainer: ConversionTrainer
    goal: Goal  # the conversion goal
    recommendations: LiveRecommendations
    latest: LatestEvents  # each visitor's latest event taken: what an answer waits for
    rec_limiter: RateLimiter  # recommendation requests with the write key, per address
    outbox: OutboxWorker | None = None
    links: LinkSigner | None = None
    broadcaster: Broadcaster = field(default_factory=Broadcaster)  # live streams
    new_keys: NewKeys = field(default_factory=NewKeys)
    started: bool = False
    startup_head: int = 0  # the log's head at start: synchronous answers wait for it

    @classmethod
    def create(cls, settings: Settings, store: Store | None = None) -> Service:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if store is None:
            store = DuckDBStore(settings.db_path)
        store.migrate()
        metrics = Metrics()
        risk_config = RiskConfig(medium=settings.risk_medium, high=settings.risk_high)
        network_velocity = NetworkVelocity(risk_config)
        login_risk = LoginRisk(risk_config)
        trainer = PopulationTrainer(store, login_risk, interval=settings.population_interval)
        registry = ModelRegistry(store)
        session_trainer = SessionTrainer(
            registry,
            SessionModels(lambda version: session_trainer.load(version)),
            detector(settings.anomaly_detector),
            interval=settings.session_model_interval,
        )
        session_anomaly = SessionAnomaly(session_trainer.models)
        conversion_trainer = ConversionTrainer(
            registry,
            ConversionModels(lambda version: conversion_trainer.load(version)),
            interval=settings.conversion_interval,
        )
        goal = Goal.parse(settings.conversion_goal, settings.conversion_filter)
        tracker = ConversionTracker(goal)
        engine = Engine(
            build_processors(
                network_velocity,
                login_risk,
                UserTags(load_rules(settings.tag_rules) if settings.tag_rules else None),
                session_anomaly,
                tracker,
            ),
            models={
                POPULATION_MODEL: trainer.activate,
                SESSION_MODEL: session_trainer.models.activate,
                CONVERSION_MODEL: conversion_trainer.models.activate,
            },
        )

        def convert(rows: list[list[float]]) -> tuple[int, list[float]] | None:
            model = conversion_trainer.models.current
            return None if model is None else (model.version, model.probabilities(rows))

        runtime = EmbeddedRuntime(
            store,
            engine,
            metrics=metrics,
            checkpoint_interval=settings.checkpoint_interval,
            store_profiles=True,  # the users search reads them (GET /v1/users)
            profile_record=SearchRecord(
                next(p for p in engine.processors if isinstance(p, UserTags))
            ),
            sessions=SessionRecorder(
                {"anomaly": session_anomaly, "conversion": tracker}, conversion=convert
            ),
        )
        segments = open_segments(settings.log_dir, store)
        loader = Loader(
            store, segments, on_load=runtime.submit, metrics=metrics, linger=settings.load_linger
        )
        committer = GroupCommitter(
            segments, loader, metrics=metrics, max_pending_events=settings.max_pending_events
        )
        inflight = InFlight(sign_in_keys(risk_config), lambda: runtime.offset)
        committer.observers.append(inflight)
        latest = LatestEvents()
        committer.observers.append(latest)
        trainer.announce = lambda event: committer.append_sync([event])
        session_trainer.announce = lambda event: committer.append_sync([event])
        conversion_trainer.announce = lambda event: committer.append_sync([event])
        secrets = load_or_create(settings.data_dir)
        links = LinkSigner(bytes.fromhex(secrets["link"]), settings.base_url)
        outbox = _outbox(settings, store, secrets["webhook"])

        def contact(user_id: str) -> tuple[str | None, str | None]:
            if not settings.notify_users:
                return None, None
            view = runtime.user(user_id) or {}
            traits = view.get("profile", {}).get("traits", {})
            email = traits.get("email")
            name = traits.get("first_name") or traits.get("name")
            return (
                email if isinstance(email, str) else None,
                name if isinstance(name, str) else None,
            )

        alerts = AlertManager(
            store,
            recipients=Recipients(
                app_name=settings.app_name,
                base_url=settings.base_url,
                admin_emails=Settings.split(settings.admin_emails),
                webhook_urls=Settings.split(settings.webhook_urls),
            ),
            enqueue=outbox.enqueue if outbox is not None else None,
            links=links,
            contact=contact,
        )
        broadcaster = Broadcaster()
        runtime.watch(broadcaster.on_applied)
        alerts.listeners.append(broadcaster.on_alerts)
        runtime.subscribe(alerts.on_outputs)
        recommendations = LiveRecommendations()
        runtime.follow(recommendations.follow)
        return cls(
            settings=settings,
            store=store,
            metrics=metrics,
            keys=KeyRing(store),
            segments=segments,
            loader=loader,
            committer=committer,
            runtime=runtime,
            enrichers=build_enrichers(
                settings.geoip_city_db, settings.geoip_asn_db, settings.ip_policy
            ),
            limiter=RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst),
            login_risk=login_risk,
            network_velocity=network_velocity,
            alerts=alerts,
            trainer=trainer,
            inflight=inflight,
            registry=registry,
            session_trainer=session_trainer,
            conversion_trainer=conversion_trainer,
            goal=goal,
            recommendations=recommendations,
            latest=latest,
            rec_limiter=RateLimiter(settings.rec_rate_limit_rps, settings.rec_rate_limit_burst),
            outbox=outbox,
            links=links,
            broadcaster=broadcaster,
        )

    def start(self) -> None:
        if self.started:
            return
        self.alerts.reload()
        # Load the geo/ASN data now rather than on the first request (~0.3 s).
        self.enrichers.warm()
        self.new_keys = NewKeys(
            admin=self.keys.ensure("admin", self.settings.admin_key),
            write=self.keys.ensure("write", self.settings.write_key),
        )
        self.trainer.load_latest()
        self.startup_head = self.segments.last_offset
        # The engine takes loads before it replays the store, so nothing falls between;
        # the loader first loads what the log holds beyond the store (after a crash).
        # The recommenders learn what the store holds (up to the engine's checkpoint);
        # the engine's replay from there goes on teaching them.
        self.recommendations.rebuild(self.store)
        self.runtime.start()
        self.loader.start()
        self.committer.start()
        self.trainer.start()
        self.session_trainer.start()
        self.conversion_trainer.start()
        self.alerts.start()
        if self.outbox is not None:
            self.outbox.start()
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        self.broadcaster.close()
        self.committer.stop()
        self.loader.stop()
        self.runtime.stop()
        self.trainer.stop()
        self.session_trainer.stop()
        self.conversion_trainer.stop()
        self.alerts.stop()
        if self.outbox is not None:
            self.outbox.stop()
        self.store.close()
        self.segments.close()
        self.started = False

    async def caught_up(self, timeout: float = 10.0) -> None:
        """Wait until the store holds everything acknowledged so far (read your writes)."""
        offset = self.committer.last_offset
        if self.loader.loaded < offset:
            await asyncio.to_thread(self.loader.wait_for, offset, timeout)

    def conversion_goal(self) -> dict[str, str | None]:
        goal = self.goal
        return {"event": goal.event, "property": goal.property, "value": goal.value}

    def erase_user(self, user_id: str) -> EraseReport:
        """Erase a user from the store, and the log's copies of their events."""
        self.loader.wait_for(self.committer.last_offset)
        report = self.store.erase_user(user_id)
        self.segments.roll()
        self.segments.drop_through(self.loader.loaded)
        return report


def build_processors(
    velocity: NetworkVelocity,
    risk: LoginRisk,
    tags: UserTags | None = None,
    session: SessionAnomaly | None = None,
    conversion: ConversionTracker | None = None,
    items: ItemInteractions | None = None,
) -> list[Processor[Any]]:
    """The service's processors, in order (tests build the same engine); the aftermath
    of a sign-in reads what ``risk`` made of it, so it comes after it, and the session
    model reads the features (without one given, a session processor that has no model
    yet, as a new service has)."""
    return [
        *traffic_processors(TrafficConfig()),  # keyed by series: they run first anyway
        velocity,
        Sessionizer(),
        BehaviourFeatures(),
        session or SessionAnomaly(SessionModels(lambda version: None)),
        conversion or ConversionTracker(),
        items or ItemInteractions(ItemConfig.from_env()),
        Profile(),
        tags or UserTags(),
        risk,
        LoginAftermath(risk.config),
    ]


def _outbox(settings: Settings, store: Store, webhook_secret: str) -> OutboxWorker | None:
    notifiers: dict[str, Notifier] = {}
    if settings.smtp_host:
        notifiers["email"] = SmtpNotifier(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                security=settings.smtp_security,  # type: ignore[arg-type]
                username=settings.smtp_username,
                password=settings.smtp_password,
                from_addr=settings.smtp_from,
                ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
            )
        )
    elif settings.email_dir is not None:
        notifiers["email"] = FileEmailNotifier(settings.email_dir, settings.smtp_from)
    if settings.webhook_urls:
        notifiers["webhook"] = WebhookNotifier(
            WebhookConfig(
                secret=settings.webhook_secret or webhook_secret,
                allow_private=settings.webhook_allow_private,
            )
        )
    if not notifiers:
        return None
    return OutboxWorker(store, notifiers, base_delay=settings.notify_retry_seconds)

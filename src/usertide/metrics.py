"""Prometheus metrics, one registry per service instance (tests run several)."""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}
        r = self.registry
        self.events_received = Counter(
            "usertide_events_received", "Events received by the collector", ["source"], registry=r
        )
        self.events_stored = Counter(
            "usertide_events_stored", "New events loaded into the store", registry=r
        )
        self.events_duplicate = Counter(
            "usertide_events_duplicate", "Events skipped as duplicates by id", registry=r
        )
        self.events_failed = Counter(
            "usertide_events_failed",
            "Events kept in the failed-events store",
            ["reason"],
            registry=r,
        )
        self.requests_rejected = Counter(
            "usertide_requests_rejected", "Requests answered with an error", ["code"], registry=r
        )
        self.request_latency = Histogram(
            "usertide_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_latency = Histogram(
            "usertide_log_commit_seconds",
            "Duration of one group commit to the log (write + fsync)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_size = Histogram(
            "usertide_log_commit_events",
            "Events per group commit",
            buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000),
            registry=r,
        )
        self.load_latency = Histogram(
            "usertide_store_load_seconds",
            "Duration of one load of the log into the store",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.load_size = Histogram(
            "usertide_store_load_events",
            "Events per load into the store",
            buckets=(1, 10, 100, 1000, 5000, 10000, 20000, 50000),
            registry=r,
        )
        self.log_loaded = Gauge(
            "usertide_log_loaded_offset", "Log offset the store holds everything up to", registry=r
        )
        self.engine_lag = Histogram(
            "usertide_engine_lag_seconds",
            "Time from durable append to the log to engine processing",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.checkpoint_latency = Histogram(
            "usertide_engine_checkpoint_seconds",
            "Duration of one engine checkpoint, by part: collecting and encoding the "
            "changed states (collect) and writing them to the store (write)",
            ["part"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.engine_offset = Gauge(
            "usertide_engine_offset", "Last log offset processed by the engine", registry=r
        )
        self.log_offset = Gauge("usertide_log_offset", "Last log offset committed", registry=r)
        self.engine_users = Gauge("usertide_engine_users", "Users with engine state", registry=r)
        self.engine_outputs = Counter(
            "usertide_engine_outputs", "Outputs produced by the engine", ["kind"], registry=r
        )

    def child(self, metric: M, *labels: str) -> M:
        """``metric.labels(*labels)``, remembered: ``labels()`` takes a lock and builds
        its key on every call, which the ingestion path would pay per request. Label
        values here come from small fixed sets (protocols, routes, reasons, codes)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found  # type: ignore[return-value]

"""Runs the enrichers in order and keeps one enricher's bug from losing the event."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from usertide.enrich.base import Enricher
from usertide.enrich.geo import GeoIPEnricher
from usertide.enrich.ip import IpPolicy, IpPrivacyEnricher
from usertide.enrich.useragent import UserAgentEnricher
from usertide.events import Event

logger = logging.getLogger(__name__)


class EnrichmentPipeline(Enricher):
    """Applies enrichers in order; an enricher that raises is skipped for that event.

    Enrichers promise never to raise, so an exception here is a bug: it is counted per
    enricher (see :attr:`failures`, for metrics) and logged with its traceback the first
    time only, because on the hot path the same bug would otherwise log at event rate.
    The event continues through the remaining enrichers with what has been added so far.
    """

    name = "pipeline"

    def __init__(self, enrichers: Sequence[Enricher]) -> None:
        self.enrichers: tuple[Enricher, ...] = tuple(enrichers)
        self._failures = [0] * len(self.enrichers)
        self._lock = threading.Lock()  # only taken on the failure path

    def enrich(self, event: Event) -> None:
        for position, enricher in enumerate(self.enrichers):
            try:
                enricher.enrich(event)
            except Exception:
                self._record_failure(position, enricher)

    def _record_failure(self, position: int, enricher: Enricher) -> None:
        with self._lock:
            self._failures[position] += 1
            first = self._failures[position] == 1
        if first:
            logger.exception(
                "enricher %r raised; the event continues without it "
                "(further failures of this enricher are only counted)",
                enricher.name,
            )

    @property
    def failures(self) -> dict[str, int]:
        """Exceptions caught so far, by enricher name."""
        counts: dict[str, int] = {}
        for enricher, count in zip(self.enrichers, self._failures, strict=True):
            counts[enricher.name] = counts.get(enricher.name, 0) + count
        return counts

    def warm(self) -> None:
        """Load lazily loaded data now (call at startup so the first event does not wait)."""
        self._call_each("warm")

    def close(self) -> None:
        """Release files held by the enrichers."""
        self._call_each("close")

    def _call_each(self, method: str) -> None:
        # warm/close are optional: only enrichers that hold lazy data or files define them.
        for enricher in self.enrichers:
            hook: Callable[[], object] | None = getattr(enricher, method, None)
            if hook is not None:
                hook()


def build_enrichers(
    city_db: str | Path | None = None,
    asn_db: str | Path | None = None,
    ip_policy: IpPolicy = "truncate",
) -> EnrichmentPipeline:
    """The collector's standard pipeline: user agent, then geo, then IP privacy.

    IP privacy must come last: geo needs the full address, and nothing after the privacy
    step may see more than the policy allows.
    """
    return EnrichmentPipeline(
        [
            UserAgentEnricher(),
            GeoIPEnricher(city_db, asn_db),
            IpPrivacyEnricher(ip_policy),
        ]
    )

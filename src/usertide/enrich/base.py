"""The enrichment contract: add derived context to an event before it is stored."""

from __future__ import annotations

from abc import ABC, abstractmethod

from usertide.events import Event


class Enricher(ABC):
    """Adds derived fields to ``event.context`` in place.

    Enrichers run on the collector's hot path, once per event, before the durable
    write: they must be fast (cache what repeats), must never raise on odd input, and
    must never need the network.
    """

    name: str = "enricher"

    @abstractmethod
    def enrich(self, event: Event) -> None: ...

"""The conversion goal: an event name, optionally with one property's value
(``USERTIDE_CONVERSION_GOAL="Order Completed"``, ``USERTIDE_CONVERSION_FILTER="plan=pro"``);
the horizon is the session."""

from __future__ import annotations

from dataclasses import dataclass

from usertide.events import Event


@dataclass(frozen=True)
class Goal:
    event: str = "Order Completed"
    property: str | None = None
    value: str | None = None

    @classmethod
    def parse(cls, event: str, filter_: str | None) -> Goal:
        if not event.strip():
            raise ValueError("the conversion goal needs an event name")
        if not filter_:
            return cls(event)
        key, sep, value = filter_.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"the conversion filter must be property=value, not {filter_!r}")
        return cls(event, key.strip(), value.strip())

    def matches(self, event: Event) -> bool:
        if event.type != "track" or event.name != self.event:
            return False
        if self.property is None:
            return True
        return str(event.properties.get(self.property)) == self.value

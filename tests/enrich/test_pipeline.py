import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from usertide.enrich import (
    Enricher,
    EnrichmentPipeline,
    GeoIPEnricher,
    IpPrivacyEnricher,
    UserAgentEnricher,
    build_enrichers,
)
from usertide.events import Context, Event

SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)

PIPELINE = build_enrichers()


def make_event(ip: str | None = None, user_agent: str | None = None) -> Event:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    return Event(
        id="evt-1",
        type="track",
        name="Signed In",
        timestamp=now,
        received_at=now,
        context=Context(ip=ip, user_agent=user_agent),
    )


class Broken(Enricher):
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def enrich(self, event: Event) -> None:
        self.calls += 1
        raise RuntimeError("enricher bug")


class Marker(Enricher):
    name = "marker"

    def enrich(self, event: Event) -> None:
        event.properties["marked"] = True


def test_standard_order_puts_privacy_last() -> None:
    kinds = [type(enricher) for enricher in PIPELINE.enrichers]
    assert kinds == [UserAgentEnricher, GeoIPEnricher, IpPrivacyEnricher]


def test_full_enrichment_then_truncation() -> None:
    event = make_event(ip="193.0.6.139", user_agent=SAFARI_IPHONE)
    PIPELINE.enrich(event)
    assert event.context.device is not None
    assert event.context.device.device_type == "mobile"
    assert event.context.geo is not None
    assert event.context.geo.country == "NL"  # located from the full address ...
    assert event.context.ip == "193.0.6.0"  # ... which is then not stored


@pytest.mark.parametrize(("policy", "stored"), [("keep", "8.8.8.8"), ("drop", None)])
def test_ip_policy_is_passed_through(policy: str, stored: str | None) -> None:
    pipeline = build_enrichers(ip_policy=policy)  # type: ignore[arg-type]
    event = make_event(ip="8.8.8.8")
    pipeline.enrich(event)
    assert event.context.ip == stored
    assert event.context.geo is not None


def test_failing_enricher_is_contained_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Broken()
    pipeline = EnrichmentPipeline([broken, Marker()])
    with caplog.at_level(logging.ERROR, logger="usertide.enrich.pipeline"):
        for _ in range(3):
            event = make_event()
            pipeline.enrich(event)
            assert event.properties == {"marked": True}  # later enrichers still ran
    assert broken.calls == 3
    assert pipeline.failures == {"broken": 3, "marker": 0}
    assert len(caplog.records) == 1
    assert "broken" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is not None


def test_pipeline_is_an_enricher() -> None:
    inner = EnrichmentPipeline([Marker()])
    outer = EnrichmentPipeline([inner])
    event = make_event()
    outer.enrich(event)
    assert event.properties == {"marked": True}


def test_warm_and_close_reach_enrichers_that_have_them() -> None:
    pipeline = build_enrichers()
    pipeline.warm()
    pipeline.close()
    pipeline.close()  # idempotent


@given(st.text(max_size=80), st.text(max_size=300))
def test_arbitrary_context_never_raises(ip: str, user_agent: str) -> None:
    event = make_event(ip=ip, user_agent=user_agent)
    PIPELINE.enrich(event)
    assert PIPELINE.failures == {"useragent": 0, "geoip": 0, "ip_privacy": 0}

"""The parse-only ceiling: the same batch bodies decoded with msgspec and normalized by
``SegmentProtocol`` in this process, on one core, without storing anything.

Also measured: the protocol's raw-bytes fast path (``parse_bytes``) when it has one,
the same plus the standard enrichment pipeline (the collector's whole CPU path before
the log). The baseline is the textbook collector's CPU path without its database:
``json.loads`` of the body (Flask's ``get_json``) and, per event, the ``json.dumps``
of context, properties and traits that ``baseline_flask`` stores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from benchmarks.common import WRITE_KEY, Context, Row, workload
from usertide.capture import CaptureRequest, SegmentProtocol
from usertide.enrich import build_enrichers

NAME = "parse"
TITLE = "parse ceiling (1 core)"


def _rate(
    bodies: list[bytes], events: int, work: Callable[[bytes], object], budget: float
) -> float:
    """Events per second of ``work`` over all bodies, repeated until ``budget`` s."""
    done = 0
    started = time.perf_counter()
    while True:
        for body in bodies:
            work(body)
        done += events
        elapsed = time.perf_counter() - started
        if elapsed >= budget:
            return done / elapsed


def run(ctx: Context) -> list[Row]:
    bodies = workload(ctx).batch_bodies[: 50 if ctx.quick else 300]
    budget = 0.3 if ctx.quick else 2.0
    protocol = SegmentProtocol()
    now = datetime.now(UTC)
    requests = {
        id(b): CaptureRequest(
            endpoint="batch", received_at=now, header_key=WRITE_KEY, body_bytes=len(b)
        )
        for b in bodies
    }
    events = sum(
        len(protocol.parse(msgspec.json.decode(b), requests[id(b)]).events) for b in bodies
    )
    decode = msgspec.json.decode

    def parse(body: bytes) -> object:
        return protocol.parse(decode(body), requests[id(body)])

    def textbook(body: bytes) -> object:
        out = []
        for event in json.loads(body)["batch"]:
            out.append(
                (
                    event.get("messageId"),
                    event.get("type"),
                    event.get("event") or event.get("name"),
                    event.get("userId"),
                    event.get("anonymousId"),
                    event.get("timestamp"),
                    json.dumps(event.get("context", {})),
                    json.dumps(event.get("properties", {})),
                    json.dumps(event.get("traits", {})),
                )
            )
        return out

    ceiling = _rate(bodies, events, parse, budget)
    stdlib = _rate(bodies, events, textbook, budget)
    ctx.cache["parse_ceiling"] = ceiling
    rows = [
        Row(TITLE, "msgspec decode + SegmentProtocol.parse", ceiling, "ev/s", baseline=stdlib,
            note="baseline = the Flask baseline's json.loads + json.dumps per event"),
    ]  # fmt: skip

    fast_path = getattr(protocol, "parse_bytes", None)
    fast_ok = fast_path is not None and fast_path(bodies[0], requests[id(bodies[0])]) is not None
    parse_only = ceiling
    if fast_ok:
        assert fast_path is not None

        def parse_fast(body: bytes) -> object:
            return fast_path(body, requests[id(body)])

        parse_only = _rate(bodies, events, parse_fast, budget)
        rows.append(
            Row(TITLE, "parse_bytes fast path", parse_only, "ev/s", baseline=ceiling,
                note="the server's path for batches; baseline = decode + parse")
        )  # fmt: skip

    enrichers = build_enrichers()
    enrichers.warm()

    def parse_enrich(body: bytes) -> object:
        request = requests[id(body)]
        parsed = fast_path(body, request) if fast_ok else None  # type: ignore[misc]
        if parsed is None:
            parsed = protocol.parse(decode(body), request)
        for event in parsed.events:
            enrichers.enrich(event)
        return parsed

    rows.append(
        Row(TITLE, "parse + enrich (collector CPU path)", _rate(bodies, events, parse_enrich,
            budget), "ev/s", baseline=parse_only, note="baseline = the same parse alone")
    )  # fmt: skip
    return rows

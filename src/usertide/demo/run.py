"""``usertide demo``: the whole service on a temporary embedded store, driven through
the real HTTP collector by a simulated shop, then a summary of what it saw."""

from __future__ import annotations

import base64
import secrets
import statistics
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import msgspec
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from usertide.alerts import Alert
from usertide.config import load_settings
from usertide.demo.abnormal import print_sessions
from usertide.demo.funnel import print_funnel, shop_funnel
from usertide.demo.recommend import print_click_through, print_live_visitor
from usertide.demo.simulator import GroundTruth, Simulation, SimulationConfig, Takeover
from usertide.engine.core import KEYED_PREFIX
from usertide.processors import Sessionizer
from usertide.server import BackgroundServer, free_port
from usertide.store import EventQuery

SENDERS = 4  # concurrent SDK-like clients; each owns a share of the visitors
BATCH = 200


def run_demo(
    *,
    users: int = 2_000,
    days: float = 3.0,
    seed: int = 7,
    keep: bool = False,
    port: int | None = None,
) -> int:
    console = Console()
    data_dir = Path(tempfile.mkdtemp(prefix="usertide-demo-"))
    admin_key, write_key = "uta_" + secrets.token_urlsafe(18), "utw_" + secrets.token_urlsafe(18)
    settings = load_settings(
        {},
        data_dir=data_dir,
        admin_key=admin_key,
        write_key=write_key,
        port=port or free_port(),
        log_level="warning",
        email_dir=data_dir / "outbox",
        admin_emails="security@shop.example",
        app_name="the demo shop",
        rate_limit_rps=1e9,
        rate_limit_burst=1e9,
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)
    sim = Simulation(SimulationConfig(users=users, days=days, seed=seed, start=start))
    console.rule("[bold]usertide demo")
    console.print(
        f"A simulated shop: {users:,} users over {days:g} days, scrapers and "
        f"{len(sim.ground_truth.takeovers)} account takeovers."
    )
    server = BackgroundServer(settings)
    with console.status("starting the service (embedded DuckDB, in-process engine) ..."):
        server.start()
    console.print(f"service on {server.url}, data in {data_dir}")
    console.print(
        f"dashboard: [bold]{server.url}/[/bold] (sign in with the admin key "
        f"[bold]{admin_key}[/bold])"
    )
    try:
        sent, seconds, latencies = _drive(server.url, write_key, sim, console)
        bad = _send_bad_input(server.url, write_key)
        with console.status("waiting for the engine to catch up ..."):
            service = server.service
            service.runtime.wait_for(service.committer.last_offset, timeout=120)
            service.runtime.checkpoint()
        _summary(console, server, sim.ground_truth, sent, seconds, latencies, bad)
        print_funnel(
            console, shop_funnel(service.store, start, datetime.now(UTC) + timedelta(hours=1))
        )
        print_live_visitor(console, service, server.url, write_key)
        with console.status("new visitors trying three recommenders ..."):
            print_click_through(console, server.url, write_key, admin_key, seed)
        if keep:
            console.print(f"\nThe service keeps running; the dashboard: [bold]{server.url}/[/bold]")
            console.print(f"  admin key: {admin_key}\n  write key: {write_key}")
            console.print("Press Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        server.stop()
    return 0


def _partitions(sim: Simulation) -> list[list[list[dict[str, Any]]]]:
    """Split the stream into per-sender batch lists; a visitor always uses one sender,
    so each user's events arrive in order, as from one SDK instance."""
    queues: list[list[dict[str, Any]]] = [[] for _ in range(SENDERS)]
    out: list[list[list[dict[str, Any]]]] = [[] for _ in range(SENDERS)]
    for event in sim.events():
        who = event.get("userId") or event.get("anonymousId") or ""
        i = zlib.crc32(who.encode()) % SENDERS
        queues[i].append(event)
        if len(queues[i]) == BATCH:
            out[i].append(queues[i])
            queues[i] = []
    for i, rest in enumerate(queues):
        if rest:
            out[i].append(rest)
    return out


def _drive(
    url: str, write_key: str, sim: Simulation, console: Console
) -> tuple[int, float, list[float]]:
    with console.status("simulating visitors ..."):
        partitions = _partitions(sim)
    total = sum(len(b) for p in partitions for b in p)
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    latencies: list[float] = []
    progress = Progress(
        TextColumn("[bold blue]sending events"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    )
    lock = threading.Lock()
    errors: list[str] = []

    def sender(batches: list[list[dict[str, Any]]], task: Any) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": auth}, timeout=30) as client:
            for batch in batches:
                body = msgspec.json.encode({"batch": batch, "sentAt": _now_iso()})
                t = time.perf_counter()
                r = client.post(
                    "/v1/batch", content=body, headers={"Content-Type": "application/json"}
                )
                elapsed = time.perf_counter() - t
                with lock:
                    latencies.append(elapsed)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                    progress.advance(task, len(batch))

    started = time.perf_counter()
    with progress:
        task = progress.add_task("send", total=total, rate="")
        threads = [threading.Thread(target=sender, args=(p, task)) for p in partitions]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            done = progress.tasks[0].completed
            rate = done / max(time.perf_counter() - started, 1e-6)
            progress.update(task, rate=f"{rate:,.0f} events/s")
            time.sleep(0.2)
        for t in threads:
            t.join()
    seconds = time.perf_counter() - started
    if errors:
        console.print(f"[red]{len(errors)} batches were refused, first: {errors[0]}")
    return total, seconds, latencies


def _send_bad_input(url: str, write_key: str) -> int:
    """A few things real clients get wrong, to show the failed-events store."""
    payloads: list[Any] = [
        {"batch": [{"type": "track", "userId": "u_broken"}], "writeKey": write_key},
        {"batch": [{"type": "track", "event": "x"}], "writeKey": write_key},
        {
            "batch": [{"type": "track", "event": "x", "userId": "u", "timestamp": "tomorrow"}],
            "writeKey": write_key,
        },
    ]
    with httpx.Client(base_url=url, timeout=10) as client:
        for body in payloads:
            client.post("/v1/batch", json=body)
        client.post(
            "/v1/batch",
            content=b'{"batch": [{"type": "track"',
            headers={
                "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
            },
        )
    return len(payloads) + 1


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _sessions(server: BackgroundServer) -> tuple[int, int]:
    users = sessions = 0
    for state in _states(server):
        users += 1
        sessions += state.get(Sessionizer).total
    return users, sessions


def _states(server: BackgroundServer) -> Iterator[Any]:
    """Users' states (not the per-network ones)."""
    engine = server.service.runtime.engine
    for key, state in list(engine.hot.items()):
        if not key.startswith(KEYED_PREFIX):
            yield state
    for key, data in list(engine.cold.items()):
        if not key.startswith(KEYED_PREFIX):
            yield engine.codec.decode(key, data)


def _summary(
    console: Console,
    server: BackgroundServer,
    truth: GroundTruth,
    sent: int,
    seconds: float,
    latencies: list[float],
    bad: int,
) -> None:
    service = server.service
    store = service.store
    users, sessions = _sessions(server)
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000 if lat else 0.0
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else 0.0
    lag = service.metrics.engine_lag
    console.rule("[bold]what usertide saw")
    table = Table(show_header=False, box=None)
    table.add_row("events sent / stored", f"{sent:,} / {store.count_events():,}")
    table.add_row(
        "ingestion rate",
        f"{sent / seconds:,.0f} events/s (batch p50 {p50:.1f} ms, p99 {p99:.1f} ms)",
    )
    table.add_row("users and visitors", f"{users:,}")
    table.add_row("sessions", f"{sessions:,}")
    table.add_row("engine lag", f"{_hist_p99(lag) * 1000:.0f} ms p99 from commit to processed")
    table.add_row("failed events kept", f"{store.count_failed():,} (of {bad} bad payloads sent)")
    console.print(table)
    pages = Table(title="top pages", show_lines=False)
    pages.add_column("path")
    pages.add_column("views", justify="right")
    for path, n in store.top_values("page_path", 8):
        pages.add_row(path, f"{n:,}")
    countries = Table(title="top countries")
    countries.add_column("country")
    countries.add_column("events", justify="right")
    for country, n in store.top_values("country", 8):
        countries.add_row(country, f"{n:,}")
    console.print(pages, countries)
    _alerts(console, server, truth)


SIGN_IN_DETECTORS = frozenset({"login_risk", "login_aftermath"})


def _alerts(console: Console, server: BackgroundServer, truth: GroundTruth) -> None:
    service = server.service
    outbox = service.outbox
    deadline = time.monotonic() + 20
    while outbox is not None and time.monotonic() < deadline:
        if not service.store.outbox_due(datetime.now(UTC) + timedelta(days=1), limit=1):
            break
        time.sleep(0.2)
    everything = service.store.alerts(limit=10_000)
    alerts = [a for a in everything if a.detector in SIGN_IN_DETECTORS]
    others = Counter(a.detector for a in everything if a.detector not in SIGN_IN_DETECTORS)

    # A takeover counts as caught when its account was alerted on from its first failed
    # attempt up to the sign-in itself (an alert on the brute force before the sign-in
    # covers the sign-in within the deduplication window).
    def takeover_of(alert: Alert) -> Takeover | None:
        for t in truth.takeovers:
            if t.user_id == alert.user_id and (
                t.timestamp - timedelta(hours=1)
                <= alert.occurred_at
                <= t.timestamp + timedelta(minutes=1)  # clock-skew correction drifts a little
            ):
                return t
        return None

    planted = {a.event_id for a in alerts if takeover_of(a) is not None}
    caught = {t.message_id for a in alerts if (t := takeover_of(a)) is not None}
    console.rule("[bold]unusual sign-ins")
    table = Table(show_lines=False)
    for column in ("user", "level", "where", "device", "why"):
        table.add_column(column)
    for alert in sorted(alerts, key=lambda a: (a.event_id not in planted, -a.score))[:8]:
        where = ", ".join(str(x) for x in (alert.data.get("city"), alert.data.get("country")) if x)
        marker = " [green](planted takeover)[/green]" if alert.event_id in planted else ""
        table.add_row(
            f"{alert.user_id}{marker}",
            f"{alert.level} {alert.score:.2f}",
            where,
            str(alert.data.get("device")),
            "; ".join(r.code.replace("_", " ") for r in alert.reasons),
        )
    console.print(table)
    sign_ins = service.store.query_events(EventQuery(name="login", limit=100_000))
    console.print(
        f"planted account takeovers caught: [bold]{len(caught)} of {len(truth.takeovers)}"
        f"[/bold]; other alerts: {len(alerts) - len(planted)} "
        f"(among {len(sign_ins):,} sign-in attempts)"
    )
    mail_dir = service.settings.email_dir
    mails = sorted(mail_dir.glob("*.eml")) if mail_dir is not None else []
    console.print(f"e-mails written to {mail_dir}: {len(mails)}")
    for path in mails[:3]:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        console.print(
            f"  [dim]to[/dim] {escape(str(message['To']))}  [dim]subject[/dim] "
            f"{escape(str(message['Subject']).strip())}"
        )
    if others:
        console.print(
            "other alerts: "
            + ", ".join(f"{n} {detector.replace('_', ' ')}" for detector, n in others.items())
            + " ([dim]GET /v1/alerts, the dashboard's alerts and sessions pages[/dim])"
        )
    print_sessions(console, server.service, truth.bot_anonymous_ids)


def _hist_p99(histogram: Any) -> float:
    """p99 upper bound from a prometheus histogram's cumulative buckets."""
    samples = [s for m in histogram.collect() for s in m.samples if s.name.endswith("_bucket")]
    total = max((s.value for s in samples), default=0.0)
    for sample in samples:
        if total and sample.value >= 0.99 * total:
            return float(sample.labels["le"]) if sample.labels["le"] != "+Inf" else float("inf")
    return 0.0

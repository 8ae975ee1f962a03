"""Simulated shop traffic with labelled bot sessions, for measuring bot-session detectors.

The stream is a deterministic function of :class:`SessionSimConfig` (every random draw
comes from one ``random.Random(seed)``). Every event is a Segment-spec ``page`` or
``track`` call with ``messageId``, ``anonymousId``, an ISO ``timestamp`` and a ``context``
holding ``ip``, ``userAgent``, ``sessionId`` and ``page {path, url, referrer, title}``; the
events are in time order. ``Simulated.truth`` maps each ``context.sessionId`` to
``"human"`` or the bot type. Session keys are random hex, so they do not give the label away.

**Humans come from real data.** Each session of the yoochoose click log
(``$USERTIDE_SHARED_DATA/yoochoose-100k/train_full.tsv``, 17,794 sessions over six days)
becomes one visitor's session: its clicks keep their order and their exact gaps (all times
shifted so that the log's first click falls on ``config.start``), each click is a ``page``
event on ``/p/<item_id>`` and 60 % of them are followed 50-800 ms later by a
``Product Viewed`` track event with ``product_id``. The first page has a referrer (search
engines, social networks, webmail or none, by rough real-world shares), later pages the
previous page. The visitor has a browser user agent (the demo's ``BROWSERS`` by market
share), an address from the demo's residential ``HOME_NETWORKS`` and one anonymousId; 15 %
of sessions belong to a visitor seen earlier (same anonymousId, browser and address).
``config.humans`` keeps the earliest sessions only.

**Bots.** ``config.bot_share[type]`` is the share of *all* sessions that are of that type
(default 1 % each, so 6 % bots), and ``config.evasive_share[type]`` the share of those
sessions that evasive bots make (default half, none for ``low_and_slow``). Bots use the
yoochoose item ids as their product pages. Every page of a session is reported, as
server-side tagging would; scripts that do not run JavaScript send no ``Product Viewed``.

A *plain* bot does all its work in one session, starting at a uniform moment over the
humans' time span. Per type:

- ``scraper``: a crawler user agent (python-requests, Scrapy, a ``...Bot/1.0``), a
  data-centre address (the demo's ``DATACENTER_NETWORKS``), 80-300 pages of distinct
  products with a category listing every 15th page, no referrer, at a fixed interval of
  1-6 s per bot with 3 % jitter (coefficient of variation ~0.03, humans' is ~1).
- ``fake_browser``: the scraper's behaviour and data-centre address behind the desktop
  Chrome user agent that most humans use.
- ``click_fraud``: a mobile browser on a foreign consumer network or VPN exit (the
  demo's ``ATTACKER_NETWORKS``); two to five bursts, 30 s to 10 min apart, each of 8-30 clicks
  0.3-3 s apart on one to three items: per click an ``Ad Clicked`` track event
  (``ad_id``, ``product_id``, ``campaign``) and, 100-400 ms later, the product page with
  an ad-network referrer.
- ``credential_stuffing``: a data-centre address, a browser or python-requests user
  agent; the sign-in page, then 40-200 ``login`` track events 0.8-5 s apart, each for
  another username, 2 % of them ``success: true``; the sign-in page is opened again
  every 10-30 attempts (a fresh form token), so 2-20 page views.
- ``headless``: a HeadlessChrome or PhantomJS user agent from a data-centre address,
  15-80 pages (home, categories, products) 0.2-1.5 s apart, each referring to the
  previous; half the product pages send ``Product Viewed`` (headless browsers run JS).
- ``low_and_slow``: a browser user agent on a residential address (a residential proxy),
  human-like log-normal gaps (median 30 s, so about two pages a minute) but kept up for
  1.5-4 hours: 150-410 pages of mostly distinct products, referrer the previous page.

An *evasive* bot keeps its type's signature (user agent, network, timing regularity,
referrers, its events) and does the same work, but at a human pace and split into
sessions that look human by volume: before each part it rotates ``context.sessionId``,
``anonymousId`` and its address (another one on the same network, as a proxy pool
does), and each part holds as many pages as a yoochoose session drawn at random (2-58,
median 3; a last single page is left undone), the next part starting 1-60 min after the
previous one ends. The whole run starts at a uniform moment at which it still ends within
the humans' time span when it can. Every part is one session in ``truth`` and its key is
in ``Simulated.evasive``; the pace:

- ``scraper``, ``fake_browser``: a fixed interval of 5-40 s per bot, 3 % jitter.
- ``click_fraud``: clicks 2-20 s apart within a burst (the bursts as above).
- ``credential_stuffing``: 2-10 attempts per session 3-20 s apart, the sign-in page
  opened at the start and again half-way, so two page views.
- ``headless``: pages 2-20 s apart.
- ``low_and_slow``: already human-paced; its only signal is its length, so an evasive one
  (human-length sessions, a browser agent, a residential address) is by construction
  indistinguishable from a human, which is why its default share is 0.

These rates are assumptions of this simulator, not measurements. On the default config
(all 17,794 human sessions, seed 11) the stream holds 17,794 human and 1,134 bot
sessions (6.0 %; 189 of each type: for all but ``low_and_slow`` 95 from plain bots and 94
from evasive ones, that is from 2-10 evasive bots per type) and about 264k events (113k
human; the evasive sessions 340-790 events per type), generated in about ten seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any, Final, Literal, NamedTuple, get_args

from usertide.demo.catalog import HOME, SHOP, SIGN_IN, SITE, Catalog, Page, category_page
from usertide.demo.population import (
    ATTACKER_NETWORKS,
    BOT_USER_AGENTS,
    BROWSERS,
    DATACENTER_NETWORKS,
    HOME_NETWORKS,
    Network,
    random_ip,
    seeded_uuid4,
)
from usertide.evaluation.login_sim import write_events

BotType = Literal[
    "scraper", "click_fraud", "credential_stuffing", "headless", "low_and_slow", "fake_browser"
]
Label = Literal["human"] | BotType
BOT_TYPES: Final[tuple[BotType, ...]] = get_args(BotType)


def default_data_path() -> Path:
    root = Path(os.environ.get("USERTIDE_SHARED_DATA", "/work/shared/data"))
    return root / "yoochoose-100k" / "train_full.tsv"


DEFAULT_SEED: Final = 11


@dataclass(frozen=True, slots=True)
class SessionSimConfig:
    seed: int = DEFAULT_SEED
    humans: int | None = None  # keep the earliest N yoochoose sessions; None = all
    bot_share: Mapping[BotType, float] = field(
        default_factory=lambda: dict.fromkeys(BOT_TYPES, 0.01)
    )
    # Of each type's sessions, the share made by evasive bots (see the module docstring).
    evasive_share: Mapping[BotType, float] = field(
        default_factory=lambda: {**dict.fromkeys(BOT_TYPES, 0.5), "low_and_slow": 0.0}
    )
    start: datetime = datetime(2025, 3, 3, tzinfo=UTC)
    data: Path | None = None  # default: default_data_path()


@dataclass(slots=True)
class Simulated:
    events: list[dict[str, Any]]
    truth: dict[str, Label]
    evasive: set[str] = field(default_factory=set)  # the bot sessions of evasive bots


# --- what the sessions are made of ---------------------------------------------------------
class _Hit(NamedTuple):
    ms: int
    kind: Literal["page", "track"]
    name: str  # the page name or the track event
    page: Page  # for a track event, the page it happened on
    referrer: str
    properties: dict[str, Any]


@dataclass(slots=True)
class _Session:
    label: Label
    anonymous_id: str
    user_agent: str
    ip: str
    hits: list[_Hit]
    evasive: bool = False


# The demo's catalogue only supplies category pages here; products are yoochoose items.
_CATEGORIES: Final = Catalog(1, Random(0)).categories
_HEADLESS_AGENTS: Final[tuple[str, ...]] = (
    *(ua for ua in BOT_USER_AGENTS if "HeadlessChrome" in ua),
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko)"
    " PhantomJS/2.1.1 Safari/538.1",
)
_CRAWLER_AGENTS: Final = tuple(ua for ua in BOT_USER_AGENTS if "Headless" not in ua)
_DESKTOP_CHROME: Final = next(b for b in BROWSERS if b.label == "Chrome on Windows").user_agent
_MOBILE_AGENTS: Final = tuple(b.user_agent for b in BROWSERS if b.mobile)
_BROWSER_AGENTS: Final = tuple(b.user_agent for b in BROWSERS)
_BROWSER_WEIGHTS: Final = tuple(b.share for b in BROWSERS)
_STUFFING_AGENTS: Final = (*_BROWSER_AGENTS, "python-requests/2.32.3")
_HOME_WEIGHTS: Final = tuple(n.weight for n in HOME_NETWORKS)
# First-page referrers of human visits with rough real-world shares ("" = direct).
_REFERRERS: Final = (
    ("", 35.0),
    ("https://www.google.com/", 35.0),
    ("https://www.bing.com/", 5.0),
    ("https://duckduckgo.com/", 5.0),
    ("https://www.facebook.com/", 8.0),
    ("https://l.instagram.com/", 5.0),
    ("https://mail.google.com/", 7.0),
)
_PRODUCT_VIEWED: Final = 0.6
_RETURNING: Final = 0.15


def product(item_id: str) -> Page:
    path = f"/p/{item_id}"
    return Page("Product", path, f"Item {item_id} — {SHOP}", f"{SITE}{path}")


# --- humans --------------------------------------------------------------------------------
def read_sessions(path: Path) -> list[list[tuple[str, float]]]:
    """The yoochoose sessions as (item id, unix seconds) clicks in file order, the
    sessions ordered by their first click."""
    sessions: dict[str, list[tuple[str, float]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            sessions.setdefault(row["SessionId"], []).append((row["ItemId"], float(row["Time"])))
    return sorted(sessions.values(), key=lambda clicks: clicks[0][1])


def _humans(
    clicks: Sequence[list[tuple[str, float]]], first: float, start_ms: int, rng: Random
) -> Iterator[_Session]:
    visitors: list[tuple[str, str, str]] = []
    for session in clicks:
        if visitors and rng.random() < _RETURNING:
            anonymous_id, user_agent, ip = rng.choice(visitors)
        else:
            anonymous_id = seeded_uuid4(rng)
            user_agent = rng.choices(_BROWSER_AGENTS, _BROWSER_WEIGHTS)[0]
            ip = random_ip(rng.choices(HOME_NETWORKS, _HOME_WEIGHTS)[0], rng)
            visitors.append((anonymous_id, user_agent, ip))
        referrer = rng.choices([r for r, _ in _REFERRERS], [w for _, w in _REFERRERS])[0]
        hits: list[_Hit] = []
        for item_id, seconds in session:
            # Rounding the offset (not each gap) keeps the log's gaps to the millisecond.
            ms = start_ms + round((seconds - first) * 1000)
            page = product(item_id)
            hits.append(_Hit(ms, "page", page.name, page, referrer, {}))
            if rng.random() < _PRODUCT_VIEWED:
                viewed_ms = ms + rng.randint(50, 800)
                props = {"product_id": item_id}
                hits.append(_Hit(viewed_ms, "track", "Product Viewed", page, referrer, props))
            referrer = page.url
        yield _Session("human", anonymous_id, user_agent, ip, hits)


# --- bots ----------------------------------------------------------------------------------
# A step is one page view with the events that belong to it (the ad click before it, the
# Product Viewed after it); an evasive bot's sessions are made of whole steps.
_Step = list[_Hit]


def _identity(kind: BotType, rng: Random) -> tuple[str, Network]:
    """The user agent and network a bot of this type keeps through all its sessions."""
    if kind == "scraper":
        return rng.choice(_CRAWLER_AGENTS), rng.choice(DATACENTER_NETWORKS)
    if kind == "fake_browser":
        return _DESKTOP_CHROME, rng.choice(DATACENTER_NETWORKS)
    if kind == "click_fraud":
        return rng.choice(_MOBILE_AGENTS), rng.choice(ATTACKER_NETWORKS)
    if kind == "credential_stuffing":
        return rng.choice(_STUFFING_AGENTS), rng.choice(DATACENTER_NETWORKS)
    if kind == "headless":
        return rng.choice(_HEADLESS_AGENTS), rng.choice(DATACENTER_NETWORKS)
    agent = rng.choices(_BROWSER_AGENTS, _BROWSER_WEIGHTS)[0]
    return agent, rng.choices(HOME_NETWORKS, _HOME_WEIGHTS)[0]  # low_and_slow: a proxy


def _crawl(rng: Random, ms: int, items: Sequence[str], interval: float) -> list[_Step]:
    """80-300 distinct products at a near-constant interval, a listing every 15th page,
    no referrer."""
    steps: list[_Step] = []
    for number, item_id in enumerate(rng.sample(items, min(len(items), rng.randint(80, 300)))):
        page = category_page(rng.choice(_CATEGORIES)) if number % 15 == 0 else product(item_id)
        steps.append([_Hit(ms, "page", page.name, page, "", {})])
        ms += max(100, round(interval * (1 + rng.gauss(0, 0.03))))
    return steps


def _click_fraud(
    rng: Random, ms: int, items: Sequence[str], gap_ms: Callable[[], int]
) -> list[_Step]:
    """Two to five bursts, 30 s to 10 min apart, of 8-30 ad clicks on one to three items."""
    campaign = f"cmp_{rng.randrange(1000):03d}"
    steps: list[_Step] = []
    for _ in range(rng.randint(2, 5)):
        targets = rng.sample(items, min(len(items), rng.randint(1, 3)))
        for _ in range(rng.randint(8, 30)):
            item_id = rng.choice(targets)
            ad_id = f"ad_{item_id}"
            page = product(item_id)
            referrer = f"https://www.googleadservices.com/pagead/aclk?ai={ad_id}"
            props = {"ad_id": ad_id, "product_id": item_id, "campaign": campaign}
            landed = ms + rng.randint(100, 400)
            steps.append(
                [
                    _Hit(ms, "track", "Ad Clicked", page, referrer, props),
                    _Hit(landed, "page", page.name, page, referrer, {}),
                ]
            )
            ms += gap_ms()
        ms += rng.randint(30_000, 600_000)
    return steps


def _credential_stuffing(
    rng: Random, ms: int, attempts: int, gap_ms: Callable[[], int], reload_every: int
) -> list[_Hit]:
    """The sign-in page, then ``attempts`` logins for other usernames, 2 % successful;
    the page is opened again every ``reload_every`` attempts (a fresh form token)."""
    hits = [_Hit(ms, "page", SIGN_IN.name, SIGN_IN, "", {})]
    for number in range(attempts):
        if number and number % reload_every == 0:
            ms += gap_ms()
            hits.append(_Hit(ms, "page", SIGN_IN.name, SIGN_IN, SIGN_IN.url, {}))
        ms += gap_ms()
        props = {"success": rng.random() < 0.02, "username": f"user{rng.randrange(10**6):06d}"}
        hits.append(_Hit(ms, "track", "login", SIGN_IN, SIGN_IN.url, props))
    return hits


def _browse(
    rng: Random,
    ms: int,
    items: Sequence[str],
    pages: int,
    gap_ms: Callable[[], int],
    viewed: float,
) -> list[_Step]:
    """A walk over home, category and product pages; ``gap_ms()`` draws each gap."""
    steps: list[_Step] = []
    referrer, page = "", HOME
    for _ in range(pages):
        step = [_Hit(ms, "page", page.name, page, referrer, {})]
        if page.name == "Product" and rng.random() < viewed:
            props = {"product_id": page.path.removeprefix("/p/")}
            step.append(_Hit(ms + rng.randint(50, 300), "track", "Product Viewed", page, "", props))
        steps.append(step)
        referrer = page.url
        if rng.random() < 0.2:
            page = category_page(rng.choice(_CATEGORIES))
        else:
            page = product(rng.choice(items))
        ms += gap_ms()
    return steps


def _human_gap(rng: Random) -> int:
    """Log-normal like human reading times: median 30 s, mean about 35 s."""
    return round(1000 * rng.lognormvariate(math.log(30), 0.55))


def _uniform_ms(rng: Random, low: int, high: int) -> Callable[[], int]:
    return lambda: rng.randint(low, high)


def _work(kind: BotType, rng: Random, ms: int, items: Sequence[str], evasive: bool) -> list[_Step]:
    """Everything one bot does, as steps; an evasive bot keeps to a human pace."""
    if kind in ("scraper", "fake_browser"):
        return _crawl(
            rng, ms, items, rng.uniform(5000, 40_000) if evasive else rng.uniform(1000, 6000)
        )
    if kind == "click_fraud":
        return _click_fraud(
            rng, ms, items, _uniform_ms(rng, *((2000, 20_000) if evasive else (300, 3000)))
        )
    if kind == "headless":
        gap = _uniform_ms(rng, *((2000, 20_000) if evasive else (200, 1500)))
        return _browse(rng, ms, items, rng.randint(15, 80), gap, 0.5)
    # low_and_slow: pages until the work has lasted its 1.5-4 hours (35 s: the mean gap)
    pages = round(rng.uniform(1.5, 4) * 3600 / 35)
    return _browse(rng, ms, items, pages, lambda: _human_gap(rng), _PRODUCT_VIEWED)


def _bot(kind: BotType, rng: Random, ms: int, items: Sequence[str]) -> _Session:
    """One bot doing all its work in one session."""
    agent, network = _identity(kind, rng)
    anonymous_id, ip = seeded_uuid4(rng), random_ip(network, rng)
    if kind == "credential_stuffing":
        attempts, gap = rng.randint(40, 200), _uniform_ms(rng, 800, 5000)
        hits = _credential_stuffing(rng, ms, attempts, gap, rng.randint(10, 30))
    else:
        hits = [hit for step in _work(kind, rng, ms, items, evasive=False) for hit in step]
    return _Session(kind, anonymous_id, agent, ip, hits)


def _evasive_bot(
    kind: BotType,
    rng: Random,
    span: tuple[int, int],
    items: Sequence[str],
    lengths: Sequence[int],
    limit: int,
) -> list[_Session]:
    """One bot doing the same work as :func:`_bot` at a human pace, in many sessions of
    human length: each with a new session id, anonymousId and address on the same
    network, 1-60 min after the previous one; at most ``limit`` of them, placed at a
    random moment within ``span`` when they fit."""
    agent, network = _identity(kind, rng)
    if kind == "credential_stuffing":
        parts: list[list[_Hit]] = []
        left = rng.randint(40, 200)
        while left > 0:
            attempts = rng.randint(2, 10)
            # Opened again half-way: two sign-in page views, as a person who mistyped.
            hits = _credential_stuffing(
                rng, 0, attempts, _uniform_ms(rng, 3000, 20_000), math.ceil(attempts / 2)
            )
            parts.append(hits)
            left -= attempts
    else:
        steps = _work(kind, rng, 0, items, evasive=True)
        parts = []
        while len(steps) > 1:  # a last single page is left undone: no human has one
            size = rng.choice(lengths)
            parts.append([hit for step in steps[:size] for hit in step])
            del steps[:size]
    sessions: list[_Session] = []
    ms = 0
    for hits in parts[:limit]:
        shift = ms - hits[0].ms
        hits = [hit._replace(ms=hit.ms + shift) for hit in hits]
        ms = hits[-1].ms + rng.randint(60_000, 3_600_000)
        sessions.append(
            _Session(kind, seeded_uuid4(rng), agent, random_ip(network, rng), hits, True)
        )
    begin = rng.randint(span[0], max(span[0], span[1] - sessions[-1].hits[-1].ms))
    for session in sessions:
        session.hits = [hit._replace(ms=hit.ms + begin) for hit in session.hits]
    return sessions


def bot_counts(humans: int, shares: Mapping[BotType, float]) -> dict[BotType, int]:
    """Bot sessions per type so that each type is its share of all sessions."""
    total_share = sum(shares.values())
    if any(s < 0 for s in shares.values()) or total_share >= 1:
        raise ValueError("bot shares must be non-negative and sum to less than 1")
    total = humans / (1 - total_share)
    return {kind: round(shares.get(kind, 0.0) * total) for kind in BOT_TYPES}


# --- the stream ----------------------------------------------------------------------------
def simulate(config: SessionSimConfig | None = None) -> Simulated:
    config = config or SessionSimConfig()
    rng = Random(config.seed)
    clicks = read_sessions(config.data or default_data_path())
    first = clicks[0][0][1]  # the log's first click, which lands on config.start
    if config.humans is not None:
        clicks = clicks[: config.humans]
    start_ms = round(config.start.timestamp() * 1000)
    sessions = list(_humans(clicks, first, start_ms, rng))
    end_ms = max((h.ms for s in sessions for h in s.hits), default=start_ms)
    items = list(dict.fromkeys(item for session in clicks for item, _ in session))
    lengths = [len(session) for session in clicks]
    for kind, count in bot_counts(len(sessions), config.bot_share).items():
        evasive = round(count * _share(config.evasive_share.get(kind, 0.0)))
        for _ in range(count - evasive):
            sessions.append(_bot(kind, rng, rng.randint(start_ms, end_ms), items))
        while evasive > 0:
            parts = _evasive_bot(kind, rng, (start_ms, end_ms), items, lengths, evasive)
            sessions += parts
            evasive -= len(parts)
    return _emit(sessions, rng)


def _share(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("evasive shares must lie between 0 and 1")
    return value


def _emit(sessions: list[_Session], rng: Random) -> Simulated:
    truth: dict[str, Label] = {}
    evasive: set[str] = set()
    rows: list[tuple[int, int, dict[str, Any]]] = []
    for session in sessions:
        key = f"s_{rng.getrandbits(64):016x}"
        while key in truth:
            key = f"s_{rng.getrandbits(64):016x}"
        truth[key] = session.label
        if session.evasive:
            evasive.add(key)
        for hit in session.hits:
            page = {
                "path": hit.page.path,
                "url": hit.page.url,
                "referrer": hit.referrer,
                "title": hit.page.title,
            }
            event: dict[str, Any] = {
                "type": hit.kind,
                "messageId": seeded_uuid4(rng),
                "anonymousId": session.anonymous_id,
                "timestamp": _stamp(hit.ms),
                "context": {
                    "ip": session.ip,
                    "userAgent": session.user_agent,
                    "sessionId": key,
                    "page": page,
                },
            }
            if hit.kind == "page":
                event["name"] = hit.name
                event["properties"] = {**page, **hit.properties}
            else:
                event["event"] = hit.name
                event["properties"] = dict(hit.properties)
            rows.append((hit.ms, len(rows), event))
    rows.sort(key=lambda row: (row[0], row[1]))
    return Simulated([event for _, _, event in rows], truth, evasive)


def _stamp(when_ms: int) -> str:
    seconds, millis = divmod(when_ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m usertide.evaluation.session_sim",
        description="Write simulated shop traffic with labelled bot sessions as JSON lines.",
    )
    parser.add_argument("out", type=Path, help="events file (JSON lines); truth goes beside it")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--humans", type=int, default=None, help="human sessions to keep")
    args = parser.parse_args(argv)
    simulated = simulate(SessionSimConfig(seed=args.seed, humans=args.humans))
    count = write_events(args.out, simulated.events)
    truth_path = args.out.with_suffix(".truth.json")
    truth_path.write_text(json.dumps(simulated.truth, indent=0, sort_keys=True) + "\n")
    print(f"{count} events, {len(simulated.truth)} sessions -> {args.out}, {truth_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

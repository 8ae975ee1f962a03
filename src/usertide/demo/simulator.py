"""A realistic simulated shop's traffic as a time-ordered stream of Segment-spec events.

Construction plans every visit up front (who, when, from where, with which browser,
and a private seed); ``events()`` then builds visits lazily as simulated time reaches
them and merges the open ones with a heap, so memory stays proportional to the number
of concurrent visits. Because each visit is a pure function of its plan, the stream is
identical on every call and across processes for the same config.

The ground truth (bot visitors, account takeovers) is computed at construction, so it is
available before, during and after iterating ``events()``.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from usertide.demo.catalog import Catalog
from usertide.demo.population import (
    ATTACKER_NETWORKS,
    BOT_USER_AGENTS,
    BROWSERS,
    DATACENTER_NETWORKS,
    Browser,
    User,
    build_population,
    random_ip,
    seeded_uuid4,
)
from usertide.demo.sessions import SessionPlan, TimedEvent, build_session

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
# Sign-ins a takeover victim makes before the attack. The risk model trusts a profile in
# proportion to its history (one sign-in says little about where a user signs in from).
VICTIM_HISTORY = 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NEVER = 1 << 62
# Relative traffic by local hour: quiet nights, a lunch bump, the evening peak.
_DIURNAL = (1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 3.5, 4.0, 4.2,
            4.5, 4.3, 4.2, 4.2, 4.4, 4.8, 5.5, 6.2, 6.5, 6.0, 4.5, 2.5)  # fmt: skip
_DIURNAL_CUMULATIVE = tuple(itertools.accumulate(_DIURNAL))
# Rough events per plan, measured on the default config; only feeds progress bars.
_HUMAN_EVENTS_PER_PAGE = 3.3
_BOT_EVENTS_PER_PAGE = 3.5


@dataclass(frozen=True)
class SimulationConfig:
    users: int = 2_000
    days: float = 3.0
    seed: int = 7
    bot_share: float = 0.03  # share of all visits that are scrapers
    takeovers: int = 3
    items: int = 500
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)  # naive means UTC


@dataclass(frozen=True)
class Takeover:
    user_id: str
    message_id: str  # the attacker's successful ``login`` event
    timestamp: datetime
    ip: str
    user_agent: str
    country: str
    description: str


@dataclass(frozen=True)
class GroundTruth:
    """What the simulation planted, kept out of the events themselves."""

    bot_anonymous_ids: frozenset[str]
    takeovers: tuple[Takeover, ...]


class Simulation:
    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        rng = Random(config.seed)
        self._catalog = Catalog(config.items, rng)
        self._users = build_population(config.users, rng)
        start = config.start if config.start.tzinfo else config.start.replace(tzinfo=UTC)
        self._start_ms = (start - _EPOCH) // timedelta(milliseconds=1)
        self._end_ms = self._start_ms + max(int(config.days * _DAY_MS), 1)

        victims = _choose_victims(self._users, config.takeovers, rng)
        plans: list[SessionPlan] = []
        takeover_plans: list[SessionPlan] = []
        for user in self._users:
            visits = self._plan_user(user, user in victims, rng)
            plans.extend(visits)
            if user in victims:
                after = visits[VICTIM_HISTORY - 1].start_ms
                takeover_plans.append(self._plan_takeover(user, after, rng))
        share = min(max(config.bot_share, 0.0), 0.99)
        bot_plans = [self._plan_bot(rng) for _ in range(round(len(plans) * share / (1 - share)))]
        plans.extend(bot_plans)
        plans.extend(takeover_plans)
        plans.sort(key=lambda plan: plan.start_ms)  # stable: ties keep planning order
        self._plans = tuple(plans)
        self._ground_truth = GroundTruth(
            bot_anonymous_ids=frozenset(plan.anonymous_id for plan in bot_plans),
            takeovers=tuple(
                sorted((self._describe(plan) for plan in takeover_plans), key=lambda t: t.timestamp)
            ),
        )

    @property
    def ground_truth(self) -> GroundTruth:
        return self._ground_truth

    def events(self) -> Iterator[dict[str, Any]]:
        """All events in global time order (equal timestamps in a fixed, seeded order)."""
        open_visits: list[tuple[int, int, int, list[TimedEvent]]] = []
        plans, upcoming = self._plans, 0
        while True:
            # Open every visit that starts before the earliest pending event.
            while upcoming < len(plans) and (
                not open_visits or plans[upcoming].start_ms <= open_visits[0][0]
            ):
                visit = build_session(plans[upcoming], self._catalog)
                if visit:
                    heapq.heappush(open_visits, (visit[0][0], upcoming, 0, visit))
                upcoming += 1
            if not open_visits:
                return
            _, number, position, visit = heapq.heappop(open_visits)
            # Emit this visit's run of events up to the next competing event or visit
            # start without touching the heap: visits rarely overlap event by event.
            limit = open_visits[0][0] if open_visits else _NEVER
            if upcoming < len(plans):
                limit = min(limit, plans[upcoming].start_ms)
            yield visit[position][1]
            position += 1
            while position < len(visit) and visit[position][0] < limit:
                yield visit[position][1]
                position += 1
            if position < len(visit):
                heapq.heappush(open_visits, (visit[position][0], number, position, visit))

    def batches(self, size: int = 100) -> Iterator[list[dict[str, Any]]]:
        events = self.events()
        while batch := list(itertools.islice(events, size)):
            yield batch

    def estimated_events(self) -> int:
        total = 0.0
        for plan in self._plans:
            if plan.kind == "bot":
                total += plan.pages * _BOT_EVENTS_PER_PAGE
            elif plan.kind == "takeover":
                total += 6 + plan.failed_logins + plan.pages
            else:
                total += plan.pages * _HUMAN_EVENTS_PER_PAGE + 3 * plan.login
        return round(total)

    # -- planning -------------------------------------------------------------------

    def _visit_start(self, day: int, utc_offset: float, rng: Random) -> int:
        """A visit time on the given day at a plausible local hour for the visitor."""
        origin = self._start_ms - self._start_ms % _DAY_MS  # UTC midnight of the start
        for _ in range(8):
            hour = _bisect_hour(rng.random() * _DIURNAL_CUMULATIVE[-1])
            local = int((hour - utc_offset) * _HOUR_MS) + rng.randrange(_HOUR_MS)
            when = origin + day * _DAY_MS + local % _DAY_MS
            if self._start_ms <= when < self._end_ms:
                return when
            day = rng.randrange(self._days_touched())
        return rng.randrange(self._start_ms, self._end_ms)

    def _days_touched(self) -> int:
        return math.ceil((self._end_ms - (self._start_ms - self._start_ms % _DAY_MS)) / _DAY_MS)

    def _plan_user(self, user: User, victim: bool, rng: Random) -> list[SessionPlan]:
        days = self._days_touched()
        if user.returning or victim:
            count = 2 + min(int(rng.expovariate(0.5)), 6)
            if victim:
                count = max(count, VICTIM_HISTORY + 1)
            # Returning means coming back on other days: spread the first visits out.
            chosen = rng.sample(range(days), min(count, days))
            chosen += [rng.randrange(days) for _ in range(count - len(chosen))]
        else:
            chosen = [rng.randrange(days)]
        starts = sorted(self._visit_start(day, user.network.utc_offset, rng) for day in chosen)
        if victim:
            # An established account: its first sign-ins fall in the first half of the
            # window, so that the attack comes after a history (a real shop's accounts
            # have months of it; the demo has days).
            half = self._start_ms + (self._end_ms - self._start_ms) // 2
            for i in range(VICTIM_HISTORY):
                starts[i] = min(starts[i], rng.randrange(self._start_ms, half))
            starts.sort()
        visits: list[SessionPlan] = []
        identified = False
        remembered: set[str] = set()  # browsers holding the user's login cookie
        for number, start in enumerate(starts):
            device = user.devices[0 if rng.random() < 0.7 else -1]
            signed_in = device.anonymous_id in remembered and rng.random() < 0.7
            if victim and number < VICTIM_HISTORY:
                login = True
            else:
                login = user.has_account and not signed_in and rng.random() < 0.45
            failed = (1 if rng.random() < 0.8 else 2) if login and rng.random() < 0.06 else 0
            # Households keep their address most of the time; otherwise the ISP
            # reassigns one from the same /24.
            ip = user.home_ip if rng.random() < 0.8 else f"{user.prefix}.{rng.randint(2, 254)}"
            visits.append(
                SessionPlan(
                    kind="human",
                    start_ms=start,
                    seed=rng.getrandbits(63),
                    anonymous_id=device.anonymous_id,
                    user_agent=device.browser.user_agent,
                    ip=ip,
                    locale=user.network.locale,
                    pages=max(1, min(round(rng.lognormvariate(math.log(4), 0.75)), 60)),
                    user=user,
                    signed_in=signed_in,
                    login=login,
                    first_identify=login and not identified,
                    failed_logins=failed,
                )
            )
            if login:
                identified = True
                remembered.add(device.anonymous_id)
        return visits

    def _plan_bot(self, rng: Random) -> SessionPlan:
        network = DATACENTER_NETWORKS[rng.randrange(len(DATACENTER_NETWORKS))]
        return SessionPlan(
            kind="bot",
            start_ms=rng.randrange(self._start_ms, self._end_ms),
            seed=rng.getrandbits(63),
            anonymous_id=seeded_uuid4(rng),  # scrapers drop cookies: new id every visit
            user_agent=rng.choice(BOT_USER_AGENTS),
            ip=random_ip(network, rng),
            locale="en-US",
            pages=rng.randint(30, 130),
        )

    def _plan_takeover(self, user: User, history_ms: int, rng: Random) -> SessionPlan:
        """The attack, some time after the victim's sign-in history (``history_ms``)."""
        network = rng.choice([n for n in ATTACKER_NETWORKS if n.country != user.network.country])
        browser = _unfamiliar_browser(user, rng)
        earliest = history_ms + 2 * _HOUR_MS
        latest = max(earliest, self._end_ms - _HOUR_MS // 2)
        return SessionPlan(
            kind="takeover",
            start_ms=rng.randint(earliest, latest),
            seed=rng.getrandbits(63),
            anonymous_id=seeded_uuid4(rng),
            user_agent=browser.user_agent,
            ip=random_ip(network, rng),
            locale=network.locale,
            pages=rng.randint(1, 4),
            user=user,
            login=True,
            # Sometimes a credential-stuffing script guesses first; sometimes the
            # attacker already has the right password from a phishing kit.
            failed_logins=rng.choice((0, 0, rng.randint(4, 12))),
        )

    def _describe(self, plan: SessionPlan) -> Takeover:
        assert plan.user is not None
        user = plan.user
        login = next(
            event
            for _, event in build_session(plan, self._catalog)
            if event.get("event") == "login" and event["properties"]["success"]
        )
        prefix = plan.ip.rsplit(".", 1)[0]
        attacker = next(n for n in ATTACKER_NETWORKS if prefix in n.prefixes)
        browser = next(b for b in BROWSERS if b.user_agent == plan.user_agent)
        usual = " or ".join(sorted({d.browser.label for d in user.devices}))
        home = user.network
        description = (
            f"Sign-in to {user.user_id} from {attacker.city}, {attacker.country} "
            f"({attacker.isp}) with {browser.label}; the user signs in from {home.city}, "
            f"{home.country} with {usual}"
        )
        if plan.failed_logins:
            description += f"; preceded by {plan.failed_logins} failed logins"
        return Takeover(
            user_id=user.user_id,
            message_id=login["messageId"],
            timestamp=datetime.fromisoformat(login["timestamp"]),
            ip=plan.ip,
            user_agent=plan.user_agent,
            country=attacker.country,
            description=description,
        )


def _bisect_hour(point: float) -> int:
    for hour, bound in enumerate(_DIURNAL_CUMULATIVE):
        if point < bound:
            return hour
    return 23


def _choose_victims(users: tuple[User, ...], count: int, rng: Random) -> set[User]:
    """Returning account holders first: they have a history for a detector to learn."""
    ranked = [
        [u for u in users if u.has_account and u.returning],
        [u for u in users if u.has_account and not u.returning],
        [u for u in users if not u.has_account],
    ]
    victims: set[User] = set()
    for group in ranked:
        needed = count - len(victims)
        if needed <= 0:
            break
        victims.update(rng.sample(group, min(needed, len(group))))
    return victims


def _unfamiliar_browser(user: User, rng: Random) -> Browser:
    """A desktop browser whose family and OS the victim never uses (e.g. Firefox on
    Windows when the user is on Chrome on macOS)."""
    families = {d.browser.browser for d in user.devices}
    systems = {d.browser.os for d in user.devices}
    options = [
        b for b in BROWSERS if b.browser not in families and b.os not in systems and not b.mobile
    ]
    if not options:
        options = [
            b for b in BROWSERS if b.user_agent not in {d.browser.user_agent for d in user.devices}
        ]
    return rng.choice(options)

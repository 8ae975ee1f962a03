"""One visit turned into Segment-spec events: human browsing, scraper crawls, takeovers.

Every visit is a pure function of its :class:`SessionPlan` (which carries its own seed),
so the simulator can build visits lazily, in any order, and still get one stream.
Times are integer milliseconds since the Unix epoch until the final ISO-8601 string, so
ordering is exact and formatting is cheap.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from random import Random
from typing import Any, Literal

from usertide.demo.catalog import (
    ACCOUNT,
    CART,
    CHECKOUT,
    HOME,
    ORDERS,
    SETTINGS,
    SIGN_IN,
    Catalog,
    Item,
    Page,
    category_page,
    product_page,
    search_page,
)
from usertide.demo.population import User, seeded_uuid4

LIBRARY_NAME = "usertide-demo"
LIBRARY_VERSION = "1"

# Funnel drop-off, per the usual e-commerce benchmarks.
ADD_TO_CART_RATE = 0.08  # per product view
CHECKOUT_RATE = 0.40  # of cart views
PURCHASE_RATE = 0.60  # of started checkouts

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SessionKind = Literal["human", "bot", "takeover"]
TimedEvent = tuple[int, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """Everything decided about a visit before its events are drawn."""

    kind: SessionKind
    start_ms: int  # the time of the visit's first event
    seed: int
    anonymous_id: str
    user_agent: str
    ip: str
    locale: str
    pages: int  # browsing pages, not counting pages the funnel or sign-in add
    user: User | None = None
    signed_in: bool = False  # the browser still holds the user's login cookie
    login: bool = False  # the visitor signs in during this visit
    first_identify: bool = False  # first sign-in ever: send identify with traits
    failed_logins: int = 0  # wrong-password attempts before the successful one


_EXTERNAL_REFERRERS = (
    "https://www.google.com/", "https://www.google.com/", "https://www.google.com/", "",
    "", "https://www.bing.com/", "https://www.instagram.com/", "https://duckduckgo.com/",
    "https://mail.example.net/newsletter",
)  # fmt: skip
_CLICK_TARGETS = (
    ("img", "Product image"), ("button", "Select size"), ("a", "Reviews"),
    ("button", "Colour swatch"), ("a", "Size guide"), ("button", "Filter"),
    ("a", "Next page"), ("button", "Sort by"), ("a", "Shipping info"),
)  # fmt: skip


@functools.lru_cache(maxsize=1 << 16)
def _minute_prefix(minute: int) -> str:
    return (_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:")


def iso_timestamp(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ``; caching the minute makes this ~4x faster than
    formatting a datetime per event."""
    minute, millis = divmod(ms, 60_000)
    return f"{_minute_prefix(minute)}{millis // 1000:02d}.{millis % 1000:03d}Z"


class _Recorder:
    """Builds the Segment-spec dicts of one visit, tracking page and sign-in state."""

    __slots__ = (
        "anonymous_id",
        "current",
        "events",
        "ip",
        "locale",
        "referrer",
        "rng",
        "user_agent",
        "user_id",
    )

    def __init__(self, plan: SessionPlan, rng: Random) -> None:
        self.rng = rng
        self.anonymous_id = plan.anonymous_id
        self.ip = plan.ip
        self.user_agent = plan.user_agent
        self.locale = plan.locale
        signed_in = plan.signed_in and plan.user is not None
        self.user_id: str | None = plan.user.user_id if signed_in and plan.user else None
        self.current = HOME
        self.referrer = ""
        self.events: list[TimedEvent] = []

    def _event(self, ms: int, kind: str, user_id: str | None = None) -> dict[str, Any]:
        page = self.current
        event: dict[str, Any] = {
            "type": kind,
            "messageId": seeded_uuid4(self.rng),
            "timestamp": iso_timestamp(ms),
            "anonymousId": self.anonymous_id,
        }
        user_id = user_id or self.user_id
        if user_id is not None:
            event["userId"] = user_id
        event["context"] = {
            "ip": self.ip,
            "userAgent": self.user_agent,
            "page": {
                "path": page.path,
                "url": page.url,
                "referrer": self.referrer,
                "title": page.title,
            },
            "locale": self.locale,
            "library": {"name": LIBRARY_NAME, "version": LIBRARY_VERSION},
        }
        self.events.append((ms, event))
        return event

    def visit(self, ms: int, page: Page, referrer: str | None = None) -> None:
        """A page view; the page left behind becomes the referrer."""
        self.referrer = self.current.url if referrer is None else referrer
        self.current = page
        event = self._event(ms, "page")
        event["name"] = page.name
        properties: dict[str, Any] = {
            "path": page.path,
            "url": page.url,
            "title": page.title,
            "referrer": self.referrer,
        }
        if page.search:
            properties["search"] = page.search
        if page.category is not None:
            properties["category"] = page.category.title
        if page.item is not None:
            properties["category"] = page.item.category.title
            properties["product_id"] = page.item.product_id
        event["properties"] = properties

    def track(
        self, ms: int, name: str, properties: dict[str, Any], user_id: str | None = None
    ) -> None:
        event = self._event(ms, "track", user_id)
        event["event"] = name
        event["properties"] = properties

    def identify(self, ms: int, traits: dict[str, Any]) -> None:
        self._event(ms, "identify")["traits"] = traits

    def click(self, ms: int) -> None:
        element, text = _CLICK_TARGETS[self.rng.randrange(len(_CLICK_TARGETS))]
        self.track(ms, "Element Clicked", {"element": element, "text": text})


def build_session(plan: SessionPlan, catalog: Catalog) -> list[TimedEvent]:
    """The visit's events in time order; the first one is at ``plan.start_ms``."""
    rng = Random(plan.seed)
    recorder = _Recorder(plan, rng)
    if plan.kind == "bot":
        _crawl(plan, catalog, rng, recorder)
    elif plan.kind == "takeover":
        _take_over(plan, catalog, rng, recorder)
    else:
        _browse(plan, catalog, rng, recorder)
    recorder.events.sort(key=itemgetter(0))  # stable: equal times keep emission order
    return recorder.events


def product_properties(item: Item) -> dict[str, Any]:
    return {
        "product_id": item.product_id,
        "name": item.title,
        "category": item.category.title,
        "price": item.price,
        "currency": "USD",
    }


def _dwell_ms(rng: Random) -> int:
    """Time on a page: lognormal, median 30 s, a long tail of readers, capped at 15 min."""
    return min(int(rng.lognormvariate(10.309, 0.8)), 900_000) + 1500  # e^10.309 ms ≈ 30 s


def _click_count(rng: Random) -> int:
    draw = rng.random()
    return 0 if draw < 0.35 else 1 if draw < 0.65 else 2 if draw < 0.83 else 3 if draw < 0.93 else 5


def _browse(plan: SessionPlan, catalog: Catalog, rng: Random, rec: _Recorder) -> None:
    """A human visit: landing page, wandering by popularity, maybe the purchase funnel."""
    t = plan.start_ms
    page = _landing_page(catalog, rng)
    rec.referrer = rng.choice(_EXTERNAL_REFERRERS)
    first_referrer: str | None = rec.referrer
    sign_in_at = min(rng.choice((0, 0, 0, 1, 2)), plan.pages - 1) if plan.login else -1
    cart: list[Item] = []
    budget, step = plan.pages, 0
    while step < budget:
        if step == sign_in_at:
            t = _sign_in(plan, rng, rec, t, first_referrer)
            first_referrer = None
        rec.visit(t, page, first_referrer)
        first_referrer = None
        # Filling in the address and card takes longer than reading a page.
        dwell = rng.randint(45_000, 240_000) if page is CHECKOUT else _dwell_ms(rng)
        leave = t + dwell
        for _ in range(_click_count(rng)):
            rec.click(t + 300 + int(rng.random() * (dwell - 600)))
        next_page = _next_page(page, catalog, rng)
        if page.item is not None:
            rec.track(t + rng.randint(50, 400), "Product Viewed", product_properties(page.item))
            if rng.random() < ADD_TO_CART_RATE:
                cart.append(page.item)
                rec.track(
                    leave - rng.randint(300, 900),
                    "Product Added",
                    {**product_properties(page.item), "quantity": 1},
                )
                next_page, budget = CART, budget + 1
        elif page.path == "/search":
            rec.track(
                t + rng.randint(50, 400),
                "Products Searched",
                {"query": page.search[3:].replace("+", " ")},
            )
        elif page is CART:
            rec.track(t + rng.randint(50, 400), "Cart Viewed", _cart_properties(cart))
            if cart and rng.random() < CHECKOUT_RATE:
                next_page, budget = CHECKOUT, budget + 1
        elif page is CHECKOUT:
            rec.track(t + rng.randint(50, 400), "Checkout Started", _cart_properties(cart))
            if rng.random() < PURCHASE_RATE:
                order = _cart_properties(cart)
                order["order_id"] = f"ord_{rng.getrandbits(40):010x}"
                order["total"] = order["value"]
                rec.track(leave, "Order Completed", order)
                cart = []
                if rng.random() < 0.6:
                    return  # most buyers leave once the order is placed
            elif rng.random() < 0.7:
                return  # an abandoned checkout usually ends the visit
            next_page = HOME
        if next_page.item is not None and page.item is None and page is not CHECKOUT:
            rec.track(
                leave - rng.randint(100, 600), "Product Clicked", product_properties(next_page.item)
            )
        page, t, step = next_page, leave, step + 1


def _landing_page(catalog: Catalog, rng: Random) -> Page:
    draw = rng.random()
    if draw < 0.40:
        return HOME
    if draw < 0.75:
        return product_page(catalog.popular_item(rng))  # search engines and ads
    if draw < 0.92:
        return category_page(catalog.any_category(rng))
    return _search_for(catalog.popular_item(rng), rng)


def _search_for(item: Item, rng: Random) -> Page:
    words = item.title.lower().split()
    query = " ".join(words[-2:]) if rng.random() < 0.5 else words[-1]
    return search_page(query, item.category)


def _next_page(page: Page, catalog: Catalog, rng: Random) -> Page:
    """A navigation step, weighted the way shoppers move between page kinds."""
    draw = rng.random()
    if page.item is not None:  # product → related product, its category, elsewhere
        if draw < 0.45:
            return product_page(catalog.popular_in(page.item.category, rng))
        if draw < 0.65:
            return category_page(page.item.category)
        if draw < 0.80:
            return product_page(catalog.popular_item(rng))
        return _search_for(catalog.popular_item(rng), rng) if draw < 0.92 else HOME
    if page.category is not None:  # category or search results → a listed product
        if draw < 0.72:
            return product_page(catalog.popular_in(page.category, rng))
        if draw < 0.87:
            return category_page(catalog.any_category(rng))
        return _search_for(catalog.popular_item(rng), rng) if draw < 0.96 else HOME
    if draw < 0.45:  # home, cart, account pages
        return product_page(catalog.popular_item(rng))
    if draw < 0.80:
        return category_page(catalog.any_category(rng))
    return _search_for(catalog.popular_item(rng), rng)


def _cart_properties(cart: list[Item]) -> dict[str, Any]:
    products = [{**product_properties(item), "quantity": 1} for item in cart]
    return {"products": products, "value": round(sum(i.price for i in cart), 2), "currency": "USD"}


def _sign_in(plan: SessionPlan, rng: Random, rec: _Recorder, t: int, referrer: str | None) -> int:
    """The login page, any mistyped passwords, the successful login and (first time)
    the identify call. Returns the time the visitor is sent back to the site."""
    assert plan.user is not None
    user_id = plan.user.user_id
    rec.visit(t, SIGN_IN, referrer)
    t += rng.randint(6_000, 25_000)  # typing email and password
    for _ in range(plan.failed_logins):
        rec.track(t, "login", _login_properties(success=False), user_id)
        t += rng.randint(5_000, 20_000)
    rec.user_id = user_id
    rec.track(t, "login", _login_properties(success=True))
    if plan.first_identify:
        traits = {"email": plan.user.email, "name": plan.user.name, "plan": plan.user.plan}
        rec.identify(t + rng.randint(20, 200), traits)
    return t + rng.randint(800, 2500)


def _login_properties(*, success: bool) -> dict[str, Any]:
    if success:
        return {"success": True, "method": "password"}
    return {"success": False, "method": "password", "reason": "invalid_password"}


def _take_over(plan: SessionPlan, catalog: Catalog, rng: Random, rec: _Recorder) -> None:
    """An attacker with the victim's password: a scripted burst of guesses (sometimes),
    the successful login, then straight to the account settings and stored orders."""
    assert plan.user is not None
    user_id = plan.user.user_id
    t = plan.start_ms
    rec.visit(t, SIGN_IN, "")
    t += rng.randint(2_000, 6_000)
    gap = rng.randint(1_500, 3_500)  # a script, so the guesses are evenly spaced
    for _ in range(plan.failed_logins):
        rec.track(t, "login", _login_properties(success=False), user_id)
        t += gap + rng.randint(-100, 100)
    rec.user_id = user_id
    rec.track(t, "login", _login_properties(success=True))
    t += rng.randint(800, 2_000)
    for page in (ACCOUNT, SETTINGS):
        rec.visit(t, page)
        t += rng.randint(4_000, 15_000)
    rec.track(t, "Profile Updated", {"fields": ["email", "phone"]})
    t += rng.randint(1_000, 3_000)
    rec.visit(t, ORDERS)
    for _ in range(plan.pages):
        t += rng.randint(5_000, 20_000)
        rec.visit(t, product_page(catalog.popular_item(rng)))


def _crawl(plan: SessionPlan, catalog: Catalog, rng: Random, rec: _Recorder) -> None:
    """A scraper: uniform walk over the catalogue, every page 'clicked' the same number
    of times, at a near-constant cadence set by the script's sleep."""
    gap = rng.uniform(400, 2_500)
    clicks_per_page = rng.randint(1, 4)
    t = plan.start_ms
    for step in range(plan.pages):
        draw = rng.random()
        if draw < 0.8:
            page = product_page(catalog.any_item(rng))
        elif draw < 0.95:
            page = category_page(catalog.any_category(rng))
        else:
            page = _search_for(catalog.any_item(rng), rng)
        rec.visit(t, page, "" if step == 0 else None)
        for _ in range(clicks_per_page):
            t += int(gap * rng.uniform(0.97, 1.03))
            rec.click(t)
        t += int(gap * rng.uniform(0.97, 1.03))

"""The simulated shop: its pages, its items and categories, and their skewed popularity.

Real shops see a few items take most of the traffic, so product popularity follows a
Zipf law (weight ∝ rank^-1.1). Sampling uses precomputed cumulative weights and a
bisect, which is several times faster than ``random.choices`` on the hot path.
"""

from __future__ import annotations

import itertools
from bisect import bisect
from dataclasses import dataclass
from random import Random

ZIPF_EXPONENT = 1.1
SITE = "https://shop.example.com"
SHOP = "Northwind Outfitters"

# (slug, title, base price in USD, nouns) — a small clothing/outdoor shop.
_CATEGORIES: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("shoes", "Shoes", 90.0, ("Sneaker", "Boot", "Loafer", "Trail Runner", "Sandal")),
    ("jackets", "Jackets", 140.0, ("Parka", "Rain Jacket", "Puffer", "Windbreaker")),
    ("knitwear", "Knitwear", 70.0, ("Sweater", "Cardigan", "Hoodie", "Turtleneck")),
    ("shirts", "Shirts", 45.0, ("Oxford Shirt", "Flannel Shirt", "Polo", "Linen Shirt")),
    ("tees", "T-Shirts", 25.0, ("Tee", "Henley", "Tank Top", "Long Sleeve Tee")),
    ("trousers", "Trousers", 65.0, ("Chino", "Jean", "Cargo Pant", "Jogger")),
    ("bags", "Bags", 80.0, ("Backpack", "Tote", "Duffel", "Messenger Bag")),
    ("accessories", "Accessories", 30.0, ("Beanie", "Scarf", "Belt", "Cap", "Gloves")),
    ("outdoor", "Outdoor", 110.0, ("Tent", "Sleeping Bag", "Headlamp", "Trekking Pole")),
    ("socks", "Socks", 15.0, ("Hiking Sock", "Crew Sock", "Ankle Sock")),
)
_ADJECTIVES = (
    "Classic", "Everyday", "Merino", "Organic", "Recycled", "Heritage", "Ultralight",
    "Waterproof", "Relaxed", "Slim", "Alpine", "Coastal", "Urban", "Insulated", "Vintage",
    "Technical", "Lightweight", "Heavyweight", "Stretch", "Packable",
)  # fmt: skip
_COLOURS = (
    "Black", "Navy", "Olive", "Sand", "Charcoal", "Rust", "Forest", "Stone", "Indigo", "Cream",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    title: str
    path: str


@dataclass(frozen=True, slots=True)
class Item:
    product_id: str
    slug: str
    title: str
    category: Category
    price: float
    rank: int  # 1 = most popular
    path: str


class Catalog:
    """Items with Zipf popularity, overall and within each category."""

    def __init__(self, size: int, rng: Random) -> None:
        if size < 1:
            raise ValueError("a catalogue needs at least one item")
        self.categories: tuple[Category, ...] = tuple(
            Category(slug, title, f"/c/{slug}") for slug, title, _, _ in _CATEGORIES
        )
        self.items: tuple[Item, ...] = tuple(_make_items(size, self.categories, rng))
        weights = [rank**-ZIPF_EXPONENT for rank in range(1, size + 1)]
        self._cumulative = list(itertools.accumulate(weights))
        self._by_category: dict[str, tuple[list[Item], list[float]]] = {}
        for category in self.categories:
            members = [item for item in self.items if item.category is category]
            if members:
                cumulative = list(itertools.accumulate(m.rank**-ZIPF_EXPONENT for m in members))
                self._by_category[category.slug] = (members, cumulative)
        # Only categories that actually hold items are worth navigating to.
        self.browsable: tuple[Category, ...] = tuple(
            c for c in self.categories if c.slug in self._by_category
        )

    def popular_item(self, rng: Random) -> Item:
        """An item drawn by overall popularity (home page, ads, search engines)."""
        return self.items[bisect(self._cumulative, rng.random() * self._cumulative[-1])]

    def popular_in(self, category: Category, rng: Random) -> Item:
        """An item of one category drawn by popularity (category and search listings)."""
        members, cumulative = self._by_category.get(category.slug) or self._fallback()
        return members[bisect(cumulative, rng.random() * cumulative[-1])]

    def any_item(self, rng: Random) -> Item:
        """A uniformly drawn item — how a crawler walks the catalogue."""
        return self.items[rng.randrange(len(self.items))]

    def any_category(self, rng: Random) -> Category:
        return self.browsable[rng.randrange(len(self.browsable))]

    def _fallback(self) -> tuple[list[Item], list[float]]:
        return list(self.items), self._cumulative


@dataclass(frozen=True, slots=True)
class Page:
    """A page of the shop as analytics.js reports it."""

    name: str
    path: str
    title: str
    url: str
    search: str = ""  # the query string, kept apart from path as analytics.js does
    item: Item | None = None
    category: Category | None = None


def _page(
    name: str,
    path: str,
    title: str,
    search: str = "",
    item: Item | None = None,
    category: Category | None = None,
) -> Page:
    return Page(name, path, f"{title} — {SHOP}", f"{SITE}{path}{search}", search, item, category)


HOME = Page("Home", "/", SHOP, f"{SITE}/")
CART = _page("Cart", "/cart", "Your cart")
CHECKOUT = _page("Checkout", "/checkout", "Checkout")
SIGN_IN = _page("Sign In", "/login", "Sign in")
ACCOUNT = _page("Account", "/account", "Your account")
ORDERS = _page("Orders", "/account/orders", "Your orders")
SETTINGS = _page("Settings", "/account/settings", "Settings")


def product_page(item: Item) -> Page:
    return _page("Product", item.path, item.title, item=item)


def category_page(category: Category) -> Page:
    return _page("Category", category.path, category.title, category=category)


def search_page(query: str, category: Category) -> Page:
    return _page("Search", "/search", f"“{query}”", "?q=" + query.replace(" ", "+"), None, category)


def _make_items(size: int, categories: tuple[Category, ...], rng: Random) -> list[Item]:
    """Items in rank order; the category of each rank is random so that popular items
    are spread over the shop instead of all sitting in the first category."""
    items: list[Item] = []
    seen: set[str] = set()
    for rank in range(1, size + 1):
        index = rng.randrange(len(categories))
        category = categories[index]
        _, _, base_price, nouns = _CATEGORIES[index]
        title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_COLOURS)} {rng.choice(nouns)}"
        slug = title.lower().replace(" ", "-")
        if slug in seen:  # titles repeat in big catalogues; slugs must not
            slug = f"{slug}-{rank}"
        seen.add(slug)
        price = round(base_price * rng.lognormvariate(0.0, 0.35), 0) - 0.01
        items.append(
            Item(
                product_id=f"sku_{rank:05d}",
                slug=slug,
                title=title,
                category=category,
                price=max(price, 4.99),
                rank=rank,
                path=f"/p/{slug}",
            )
        )
    return items

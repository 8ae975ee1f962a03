"""The simulated visitors: where they connect from, what they browse with, who they are.

The IP prefixes below are illustrative /24s taken from real ISP and hosting ranges in
each country (checked against the GeoLite2 and geoip2fast databases shipped as Python
packages), so the demo's geo enrichment resolves them offline to the country stated
here. No traffic is ever sent to them. The user-agent strings are real, current
browser strings with rough market shares.
"""

from __future__ import annotations

import itertools
from bisect import bisect
from dataclasses import dataclass
from random import Random


@dataclass(frozen=True, slots=True)
class Network:
    country: str  # ISO 3166-1 alpha-2
    city: str
    isp: str
    prefixes: tuple[str, ...]  # first three octets of /24 blocks
    locale: str
    utc_offset: float  # hours; drives the diurnal rhythm of sign-ins
    weight: float = 1.0  # share of the user base


HOME_NETWORKS: tuple[Network, ...] = (
    Network("US", "San Francisco", "Comcast", ("73.92.12", "98.207.130"), "en-US", -8, 24),
    Network("US", "Philadelphia", "Comcast", ("68.80.10",), "en-US", -5, 8),
    Network("DE", "Munich", "Deutsche Telekom", ("79.192.44", "217.230.10"), "de-DE", 1, 9),
    Network("FR", "Paris", "Orange", ("90.112.33", "90.38.140", "92.184.100"), "fr-FR", 1, 7),
    Network("GB", "London", "BT", ("86.133.20", "81.153.77", "31.49.80"), "en-GB", 0, 9),
    Network("IN", "Delhi", "Bharti Airtel", ("122.161.48", "49.36.122"), "en-IN", 5.5, 7),
    Network("BR", "São Paulo", "Telefônica Vivo", ("177.94.200", "187.35.12"), "pt-BR", -3, 5),
    Network("JP", "Tokyo", "KDDI", ("106.72.130", "27.85.200"), "ja-JP", 9, 5),
    Network("UA", "Odesa", "Kyivstar", ("46.211.89", "46.200.30"), "uk-UA", 2, 2),
    Network("CA", "Toronto", "Rogers", ("174.112.7", "99.228.41"), "en-CA", -5, 5),
    Network("AU", "Melbourne", "Telstra", ("1.144.11", "120.148.60"), "en-AU", 11, 3),
    Network("ES", "Barcelona", "Telefónica", ("83.45.100", "88.12.30"), "es-ES", 1, 3),
    Network("IT", "Rome", "Telecom Italia", ("79.32.16", "93.45.120"), "it-IT", 1, 3),
    Network("NL", "Amsterdam", "KPN", ("77.160.20", "84.24.120"), "nl-NL", 1, 3),
    Network("PL", "Rzeszów", "Orange Polska", ("83.24.40",), "pl-PL", 1, 2),
    Network("MX", "Mexico City", "Telmex", ("189.146.33", "201.141.20"), "es-MX", -6, 3),
)  # fmt: skip

# Hosting ranges scrapers run from (AWS, DigitalOcean, Hetzner, OVH, Google Cloud).
DATACENTER_NETWORKS: tuple[Network, ...] = (
    Network("US", "Ashburn", "AWS", ("54.221.60", "18.206.40", "3.80.14"), "en-US", 0),
    Network("US", "Santa Clara", "DigitalOcean", ("138.68.20", "104.248.60"), "en-US", 0),
    Network("NL", "Amsterdam", "DigitalOcean", ("167.99.40",), "en-US", 0),
    Network("DE", "Nuremberg", "Hetzner", ("88.198.50",), "en-US", 0),
    Network("FI", "Helsinki", "Hetzner", ("95.216.80",), "en-US", 0),
    Network("FR", "Roubaix", "OVH", ("51.75.60",), "en-US", 0),
    Network("US", "The Dalles", "Google Cloud", ("34.82.10",), "en-US", 0),
)

# Where account takeovers come from: foreign consumer ISPs and commercial VPN exits.
ATTACKER_NETWORKS: tuple[Network, ...] = (
    Network("UA", "Kyiv", "Kyivstar", ("46.211.200",), "uk-UA", 2),
    Network("UA", "Kyiv", "Content Delivery Network Ltd (VPS)", ("178.150.20",), "ru-RU", 2),
    Network("RO", "Bucharest", "Digi Romania", ("82.76.40",), "ro-RO", 2),
    Network("NG", "Lagos", "Airtel Nigeria", ("105.112.30",), "en-NG", 1),
    Network("VN", "Hanoi", "Viettel", ("27.72.100",), "vi-VN", 7),
    Network("CH", "Zurich", "Proton VPN (Proton AG)", ("185.159.157",), "en-US", 1),
    Network("FR", "Paris", "VPN exit (Datacamp)", ("185.246.211",), "en-US", 1),
    Network("SG", "Singapore", "DigitalOcean (VPN)", ("178.128.90",), "en-US", 8),
)


@dataclass(frozen=True, slots=True)
class Browser:
    browser: str
    os: str
    user_agent: str
    share: float
    mobile: bool

    @property
    def label(self) -> str:
        return f"{self.browser} on {self.os}"


# User-agent strings are assembled from their usual parts to keep them readable.
_WINDOWS = "Windows NT 10.0; Win64; x64"
_MAC = "Macintosh; Intel Mac OS X 10_15_7"  # frozen by Apple since Big Sur
_BLINK = "AppleWebKit/537.36 (KHTML, like Gecko)"
_WEBKIT = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
_CHROME = "131.0.0.0"
_FIREFOX = "rv:133.0) Gecko/20100101 Firefox/133.0"
_IOS = "18_1 like Mac OS X"

BROWSERS: tuple[Browser, ...] = (
    Browser(
        "Chrome",
        "Windows",
        f"Mozilla/5.0 ({_WINDOWS}) {_BLINK} Chrome/{_CHROME} Safari/537.36",
        26,
        mobile=False,
    ),
    Browser(
        "Safari",
        "iOS",
        f"Mozilla/5.0 (iPhone; CPU iPhone OS {_IOS}) {_WEBKIT} Version/18.1"
        " Mobile/15E148 Safari/604.1",
        22,
        mobile=True,
    ),
    Browser(
        "Chrome",
        "Android",
        f"Mozilla/5.0 (Linux; Android 10; K) {_BLINK} Chrome/{_CHROME} Mobile Safari/537.36",
        18,
        mobile=True,
    ),
    Browser(
        "Safari",
        "macOS",
        f"Mozilla/5.0 ({_MAC}) {_WEBKIT} Version/18.1 Safari/605.1.15",
        9,
        mobile=False,
    ),
    Browser(
        "Chrome",
        "macOS",
        f"Mozilla/5.0 ({_MAC}) {_BLINK} Chrome/{_CHROME} Safari/537.36",
        8,
        mobile=False,
    ),
    Browser(
        "Edge",
        "Windows",
        f"Mozilla/5.0 ({_WINDOWS}) {_BLINK} Chrome/{_CHROME} Safari/537.36 Edg/{_CHROME}",
        6,
        mobile=False,
    ),
    Browser(
        "Samsung Internet",
        "Android",
        f"Mozilla/5.0 (Linux; Android 14; SM-S918B) {_BLINK}"
        " SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        4,
        mobile=True,
    ),
    Browser("Firefox", "Windows", f"Mozilla/5.0 ({_WINDOWS}; {_FIREFOX}", 3, mobile=False),
    Browser(
        "Safari",
        "iPadOS",
        f"Mozilla/5.0 (iPad; CPU OS {_IOS}) {_WEBKIT} Version/18.1 Mobile/15E148 Safari/604.1",
        2,
        mobile=True,
    ),
    Browser("Firefox", "Linux", f"Mozilla/5.0 (X11; Linux x86_64; {_FIREFOX}", 2, mobile=False),
)

BOT_USER_AGENTS: tuple[str, ...] = (
    f"Mozilla/5.0 ({_WINDOWS}) {_BLINK} HeadlessChrome/{_CHROME} Safari/537.36",
    f"Mozilla/5.0 (X11; Linux x86_64) {_BLINK} HeadlessChrome/{_CHROME} Safari/537.36",
    "python-requests/2.32.3",
    "Mozilla/5.0 (compatible; SomeBot/1.0)",
    "Scrapy/2.11.2 (+https://scrapy.org)",
)

_FIRST_NAMES = (
    "Ava", "Liam", "Mia", "Noah", "Emma", "Lucas", "Sofia", "Mateo", "Hana", "Yuki", "Arjun",
    "Priya", "Lena", "Jonas", "Chloé", "Hugo", "Olivia", "Oliver", "Ana", "João", "Oksana",
    "Taras", "Giulia", "Marco", "Zofia", "Jakub", "Sanne", "Daan", "Lucía", "Diego",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Garcia", "Müller", "Martin", "Brown", "Sharma", "Silva", "Tanaka", "Kovalenko",
    "Tremblay", "Wilson", "López", "Rossi", "de Vries", "Nowak", "Hernández", "Schmidt",
    "Dubois", "Patel", "Santos", "Sato", "Shevchenko", "Jones", "Bianchi", "Jansen",
)  # fmt: skip
_PLANS = ("free", "free", "free", "plus", "plus", "pro")

ACCOUNT_SHARE = 0.6  # visitors who have an account and may sign in
RETURNING_SHARE = 0.4  # visitors who come back on other days; the rest visit once
SECOND_DEVICE_SHARE = 0.4


@dataclass(frozen=True, slots=True)
class Device:
    anonymous_id: str  # analytics.js keeps one per browser profile
    browser: Browser


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    email: str
    plan: str
    has_account: bool
    returning: bool
    network: Network
    home_ip: str  # the household's usual address inside its /24
    devices: tuple[Device, ...]

    @property
    def prefix(self) -> str:
        return self.home_ip.rsplit(".", 1)[0]


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version nibble and variant bits
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def seeded_uuid4(rng: Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (``uuid.uuid4`` uses os.urandom and
    would break determinism); formatted by hand because ``uuid.UUID`` is twice as slow."""
    h = f"{rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_ip(network: Network, rng: Random) -> str:
    return f"{rng.choice(network.prefixes)}.{rng.randint(2, 254)}"


class _Weighted:
    """Weighted choice via cumulative weights and bisect (cheap, deterministic)."""

    def __init__(self, weights: list[float]) -> None:
        self._cumulative = list(itertools.accumulate(weights))

    def index(self, rng: Random) -> int:
        return bisect(self._cumulative, rng.random() * self._cumulative[-1])


_network_choice = _Weighted([n.weight for n in HOME_NETWORKS])
_browser_choice = _Weighted([b.share for b in BROWSERS])


def build_population(size: int, rng: Random) -> tuple[User, ...]:
    return tuple(_make_user(number, rng) for number in range(1, size + 1))


def _make_user(number: int, rng: Random) -> User:
    network = HOME_NETWORKS[_network_choice.index(rng)]
    first = rng.choice(_FIRST_NAMES)
    last = rng.choice(_LAST_NAMES)
    primary = BROWSERS[_browser_choice.index(rng)]
    devices = [Device(seeded_uuid4(rng), primary)]
    if rng.random() < SECOND_DEVICE_SHARE:
        # The second device is usually the other form factor (phone + laptop).
        while (other := BROWSERS[_browser_choice.index(rng)]).mobile == primary.mobile:
            pass
        devices.append(Device(seeded_uuid4(rng), other))
    return User(
        user_id=f"u_{number:06d}",
        name=f"{first} {last}",
        email=f"user{number}@example.com",
        plan=rng.choice(_PLANS),
        has_account=rng.random() < ACCOUNT_SHARE,
        returning=rng.random() < RETURNING_SHARE,
        network=network,
        home_ip=random_ip(network, rng),
        devices=tuple(devices),
    )


def network_of_ip(ip: str) -> Network | None:
    """The table entry an address was drawn from (used by tests and ground truth)."""
    prefix = ip.rsplit(".", 1)[0]
    for network in (*HOME_NETWORKS, *ATTACKER_NETWORKS, *DATACENTER_NETWORKS):
        if prefix in network.prefixes:
            return network
    return None

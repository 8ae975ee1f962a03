"""Simulated sign-in traffic with labelled account-takeover attempts, for measuring detectors.

The stream is a deterministic function of :class:`LoginSimConfig` (every random draw comes
from one ``random.Random(seed)``) and is written as JSON lines, one Segment-spec ``track``
event named ``login`` per sign-in attempt, in time order::

    {"type": "track", "event": "login", "messageId": "...", "userId": "u_000042",
     "timestamp": "2025-03-03T08:15:30.123Z",
     "context": {"ip": "73.92.12.54", "userAgent": "Mozilla/5.0 ..."},
     "properties": {"success": true, "label": "legit", "attack_type": null}}

**Legitimate users.** Each user lives on a residential network (ISP /24 blocks and city
from the demo's ``HOME_NETWORKS``), subscribes to a mobile carrier of their country and
owns one to three devices (the demo's ``BROWSERS`` user-agent strings by market share:
typically a laptop plus a phone, sometimes a tablet or a second browser). Each signs in
on their own habit: a personal rate (log-normal, median 1 a day, fewer at weekends) at
one to three preferred hours of *their local time*, with some sign-ins at any waking
hour. Where a sign-in comes from depends on the device and the moment:

- at home, from the household address, which the ISP reassigns now and then (DHCP);
- on mobile data, from a fresh address anywhere in the carrier's prefixes (carrier-grade
  NAT churn) - about a third of phone sign-ins;
- at the office (a quarter of users in countries with offices, weekdays 9-18 local), from
  the office's one /24 that dozens of colleagues share;
- through a commercial VPN or hosting exit, usually in their own country (3 % of users,
  half of their sign-ins);
- on a trip (15 % of users, 3-14 days in another country; no sign-ins on the two flight
  days), from the hotel's network there, in the destination's time zone, while the phone
  on roaming data keeps a home-carrier address half the time - a legitimate new country,
  and country flip-flops, that a detector must tolerate.

Users also replace devices (8 % get a new phone with a new user agent, sometimes another
platform; 4 % a new computer), desktop Chrome, Edge and Firefox update their version
string half way through the period (each user a few days after release), and 6 % of
legitimate sign-ins are preceded by one to four failed password attempts.

**Attacks.** ``attacks_per_type`` incidents of each kind (by default one per 20 users: 100
for the default 2,000), all after the first quarter of the period (so victims have
history), every attempt labelled ``attack``:

- ``naive``: a random other country (consumer ISPs and the demo's ``ATTACKER_NETWORKS``)
  and a random browser; the password is known (phished), so after at most two typos it
  succeeds; 40 % come back one to three times within three days from the same place.
- ``vpn``: a hosting or VPN exit in the victim's own country, a random browser, at the
  attacker's own local hour; otherwise as ``naive``.
- ``targeted``: a residential address in the victim's country (a residential proxy on
  another ISP network than the victim's own), a browser of the same ua-parser family as
  the victim's usual one (half the time the very same user-agent string), at a daytime
  hour of the victim's time zone; otherwise as ``naive``.
- ``credential_stuffing``: a campaign from one to five hosting addresses, one user agent
  or a rotating set, trying 50-300 distinct accounts a few seconds apart (a fifth of the
  names do not exist here); about 4 % of existing accounts succeed.
- ``brute_force``: 20-200 failed attempts on one account, a few seconds apart, from one
  hosting or foreign address; half end with a success.

**After the sign-in** (``simulate_sessions`` only; ``simulate_logins`` is the sign-ins
alone, unchanged): every successful sign-in is followed, from the same address and
browser, by what its session does, as Segment ``track`` events without labels: zero to
two ordinary ones (``Order Viewed``, ``Product Viewed``, ``Settings Viewed``) and
sometimes account changes (``Password Changed``, ``Email Changed``, ``Payment Method
Added``, ``Data Exported``, ``Two-Factor Disabled``). Legitimate sessions make them
rarely (per session 0.3 %, 0.1 %, 0.8 %, 0.1 %, 0.02 %; a password change in 8 % of the
sessions that followed two or more failed attempts), 1-40 minutes after signing in. A
takeover session (a successful attack sign-in) only looks around 35 % of the time (70 %
for credential stuffing, whose lists are mostly checked and sold, not used at once);
otherwise it changes the e-mail address (45 %), the password (35 %), adds a payment
method (30 %), exports data (25 %) or turns off two-factor authentication (10 %), at
least one of them, 0.5-15 minutes after signing in. These rates are assumptions of this
simulator, in the spirit of what Castle and Sift describe (takeovers lock the owner out
and cash out), not measurements: a result that depends on them says so. They come from
their own random stream, so the sign-ins are the same with or without them.

Every IP prefix is a real, public /24 chosen from the ISP, carrier, business-fibre or
hosting ranges named next to it, and the offline GeoLite2 data usertide ships resolves it
to the country stated (tested); no traffic is ever sent anywhere. On the default config
the stream holds about 180k sign-in attempts and is generated in a few seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any, Final, Literal, NamedTuple

import msgspec

from usertide.demo.population import (
    ATTACKER_NETWORKS,
    BROWSERS,
    DATACENTER_NETWORKS,
    HOME_NETWORKS,
    Browser,
    Network,
    random_ip,
    seeded_uuid4,
)
from usertide.enrich import parse_user_agent

AttackType = Literal["naive", "vpn", "targeted", "credential_stuffing", "brute_force"]
ATTACK_TYPES: Final[tuple[AttackType, ...]] = (
    "naive",
    "vpn",
    "targeted",
    "credential_stuffing",
    "brute_force",
)

# --- networks the demo does not have -------------------------------------------------------
_HOME_OF: Final = {n.country: n for n in reversed(HOME_NETWORKS)}  # each country's first entry


def _net(country: str, city: str, isp: str, *prefixes: str, utc: float | None = None) -> Network:
    """A network with the locale (and, unless given, the time zone) of the country's users."""
    home = _HOME_OF[country]
    return Network(
        country, city, isp, prefixes, home.locale, home.utc_offset if utc is None else utc
    )


def _blocks(first_octets: str, *third_octets: int) -> tuple[str, ...]:
    return tuple(f"{first_octets}.{third}" for third in third_octets)


# The demo gives each home ISP one to three /24s, which would put hundreds of users in one
# /24; these are more blocks of the same ISPs (same country and network owner) so that
# households rarely share a /24 and practically never an address.
_MORE_HOME_PREFIXES: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("Comcast", "San Francisco"): (
        *_blocks("73.92", 15, 49, 83, 117, 151, 185, 219, 253),
        *_blocks("98.207", 30, 64, 150, 184, 218, 252),
    ),
    ("Comcast", "Philadelphia"): (
        *_blocks("68.80", 13, 30, 47, 64, 81, 98, 115, 132, 149, 166, 183, 200, 217, 234),
    ),
    ("Deutsche Telekom", "Munich"): (
        *_blocks("79.192", 29, 47, 81, 115, 149, 183, 217, 251),
        *_blocks("217.230", 30, 64, 98, 132, 166, 200),
    ),
    ("Orange", "Paris"): (
        *_blocks("90.112", 36, 87, 138, 189, 240),
        *_blocks("90.38", 40, 91, 143, 194, 245),
        *_blocks("92.184", 0, 103, 154, 205),
    ),
    ("BT", "London"): (
        *_blocks("86.133", 23, 74, 125, 176, 227),
        *_blocks("81.153", 28, 80, 131, 182, 233),
        *_blocks("31.49", 83, 134, 185, 236),
    ),
    ("Bharti Airtel", "Delhi"): (
        *_blocks("122.161", 16, 51, 68, 85, 102, 119, 136, 153, 170, 187, 204, 221, 238, 255),
    ),
    ("Telefônica Vivo", "São Paulo"): (
        *_blocks("177.94", 15, 49, 83, 117, 151, 185, 203, 237),
        *_blocks("187.35", 32, 66, 100, 134, 168, 202),
    ),
    ("KDDI", "Tokyo"): (
        *_blocks("106.72", 13, 47, 81, 115, 133, 167, 201, 235),
        *_blocks("27.85", 32, 66, 100, 134, 220, 254),
    ),
    ("Kyivstar", "Odesa"): (
        *_blocks("46.211", 6, 23, 40, 57, 92, 109, 126, 143, 160, 177, 194, 211, 228, 245),
    ),
    ("Rogers", "Toronto"): (
        *_blocks("174.112", 10, 44, 78, 112, 146, 180, 214, 248),
        *_blocks("99.228", 61, 95, 129, 163, 197, 231),
    ),
    ("Telstra", "Melbourne"): (
        *_blocks("1.144", 14, 48, 82, 116, 150, 184, 218, 252),
        *_blocks("120.148", 80, 114, 148, 182, 216, 250),
    ),
    ("Telefónica", "Barcelona"): (
        *_blocks("83.45", 17, 51, 85, 103, 137, 171, 205, 239),
        *_blocks("88.12", 50, 84, 118, 152, 186, 220),
    ),
    ("Telecom Italia", "Rome"): (
        *_blocks("79.32", 19, 36, 53, 70, 87, 104, 121, 138, 155, 172, 189, 206, 223, 240),
    ),
    ("KPN", "Amsterdam"): (
        *_blocks("77.160", 23, 40, 57, 74, 91, 108, 125, 142, 159, 176, 193, 210, 227, 244),
    ),
    ("Orange Polska", "Rzeszów"): (
        *_blocks("83.24", 8, 43, 60, 77, 94, 111, 128, 145, 162, 179, 196, 213, 230, 247),
    ),
    ("Telmex", "Mexico City"): (
        *_blocks("189.146", 1, 36, 53, 70, 87, 104, 121, 138, 155, 172, 189, 206, 223, 240),
    ),
}
USER_HOME_NETWORKS: Final[tuple[Network, ...]] = tuple(
    replace(n, prefixes=n.prefixes + _MORE_HOME_PREFIXES.get((n.isp, n.city), ()))
    for n in HOME_NETWORKS
)

# Mobile carriers: every sign-in on mobile data gets a fresh address from these prefixes.
MOBILE_NETWORKS: Final[tuple[Network, ...]] = (
    _net("US", "", "T-Mobile US", "172.56.21", "172.56.140", "172.58.33", "172.58.201"),
    _net("US", "", "Verizon Wireless", "174.205.10", "174.205.99", "174.247.30", "174.247.180"),
    _net("US", "", "AT&T Mobility", "166.170.20", "166.170.77", "166.170.190"),
    _net("DE", "", "Telekom Deutschland", "80.187.20", "80.187.64", "80.187.100"),
    _net("DE", "", "Vodafone DE", "109.40.12", "109.40.240"),
    _net("DE", "", "O2 Germany", "176.3.10", "176.3.90"),
    _net("FR", "", "Free Mobile", "37.171.20", "37.166.50", "37.166.201"),
    _net("FR", "", "Bouygues Telecom", "176.145.30", "176.145.150"),
    _net("FR", "", "SFR", "77.205.4", "77.205.90"),
    _net("GB", "", "Three UK", "92.40.12", "92.40.180"),
    _net("GB", "", "O2 UK", "82.132.140", "82.132.220"),
    _net("GB", "", "EE (BT)", "31.94.20", "31.94.130"),
    _net("IN", "", "Jio", "49.34.10", "49.34.200", "157.40.20", "157.40.133"),
    _net("IN", "", "Airtel Mobile", "106.210.50", "106.205.30"),
    _net("BR", "", "Claro", "179.240.10", "191.245.20", "187.26.70"),
    _net("BR", "", "Vivo Mobile", "177.79.40", "177.79.160"),
    _net("JP", "", "NTT docomo", "49.98.10", "49.104.20", "1.75.20"),
    _net("JP", "", "SoftBank Mobile", "126.253.10", "126.253.140"),
    _net("UA", "", "Vodafone Ukraine", "46.133.10", "178.133.20"),
    _net("UA", "", "Kyivstar Mobile", "188.163.30", "188.163.170"),
    _net("UA", "", "lifecell", "37.73.50", "37.73.140"),
    _net("CA", "", "Rogers Wireless", "72.143.20", "72.143.100"),
    _net("CA", "", "Bell Mobility", "184.151.36", "184.151.60"),
    _net("AU", "", "Optus Mobile", "49.181.10", "49.195.20"),
    _net("AU", "", "Vodafone AU", "101.119.20", "101.119.60"),
    _net("ES", "", "Vodafone ES", "31.4.20", "31.4.150"),
    _net("ES", "", "Orange ES", "90.167.10", "37.11.30"),
    _net("IT", "", "Vodafone IT", "2.36.10", "5.90.20"),
    _net("IT", "", "WindTre", "151.19.10", "151.19.150"),
    _net("NL", "", "Odido", "31.201.10", "31.201.90"),
    _net("PL", "", "Plus (Polkomtel)", "31.0.10", "31.0.130"),
    _net("PL", "", "T-Mobile PL", "188.146.20", "188.146.90"),
    _net("MX", "", "Telcel", "200.68.130", "200.68.150", "200.68.170"),
)

# More consumer ISPs: hotel and holiday-flat networks for travellers, and where targeted
# attackers (residential proxies) come from.
RESIDENTIAL_NETWORKS: Final[tuple[Network, ...]] = (
    _net("US", "New York", "Spectrum", "24.161.20", utc=-5),
    _net("US", "New York", "Verizon Fios", "71.105.40", utc=-5),
    _net("US", "Dallas", "AT&T Internet", "76.218.30", utc=-6),
    _net("DE", "Homburg", "Vodafone Kabel", "95.90.40"),
    _net("DE", "Munich", "O2 DSL", "89.204.130"),
    _net("FR", "Paris", "Free", "82.64.40", "88.170.30"),
    _net("GB", "Canterbury", "TalkTalk", "2.96.40", "92.20.30"),
    _net("IN", "Bengaluru", "ACT Fibernet", "106.51.12"),
    _net("BR", "São Paulo", "Vivo Fibra", "177.139.40"),
    _net("BR", "Brasília", "Claro NET", "189.6.20"),
    _net("JP", "Tokyo", "NTT OCN", "153.203.40"),
    _net("UA", "Kyiv", "Lanet", "176.36.20"),
    _net("UA", "Kyiv", "Kyivstar Home", "94.153.30"),
    _net("CA", "Laval", "Videotron", "24.200.30"),
    _net("CA", "Ottawa", "Bell Canada", "70.26.20"),
    _net("AU", "Sydney", "Telstra", "101.180.20"),
    _net("AU", "Melbourne", "Optus", "49.185.30"),
    _net("ES", "Madrid", "Movistar", "81.32.40"),
    _net("ES", "Valladolid", "Vodafone Ono", "62.42.20"),
    _net("IT", "Rome", "TIM", "87.1.40", "95.233.20"),
    _net("IT", "Ravenna", "Fastweb", "2.224.30"),
    _net("NL", "Zoetermeer", "Ziggo", "84.104.40"),
    _net("PL", "Warsaw", "UPC Polska", "89.64.30"),
    _net("PL", "Krakow", "Netia", "89.187.228"),
    _net("MX", "Puebla", "Megacable", "177.228.20"),
    _net("MX", "Mexico City", "Totalplay", "187.188.40"),
)

# Business-fibre offices: one /24 each, shared by every employee behind the office NAT.
OFFICE_NETWORKS: Final[tuple[Network, ...]] = (
    _net("US", "Boston", "Cogent (office)", "38.104.4", utc=-5),
    _net("US", "Louisville", "Zayo (office)", "64.125.20", utc=-5),
    _net("US", "Long Beach", "Zayo (office)", "208.185.4"),
    _net("DE", "Frankfurt", "COLT (office)", "62.96.4"),
    _net("GB", "London", "COLT (office)", "80.169.4"),
    _net("GB", "London", "GTT (office)", "89.202.140"),
    _net("FR", "Paris", "COLT (office)", "213.41.4"),
    _net("FR", "Paris", "Keyyo (office)", "213.41.130"),
    _net("IN", "Bengaluru", "Tata Communications (office)", "115.113.4"),
    _net("JP", "Tokyo", "KVH (office)", "61.195.72"),
    _net("CA", "Toronto", "Bell Business (office)", "206.47.8"),
)

# Hosting and VPN exits by country, in addition to the demo's DATACENTER_NETWORKS and the
# VPN entries of ATTACKER_NETWORKS. Also used, legitimately, by users who run a VPN.
HOSTING_NETWORKS: Final[tuple[Network, ...]] = (
    _net("US", "New York", "Datacamp (VPN)", "89.187.176", utc=-5),
    _net("US", "Piscataway", "Vultr", "45.76.4", utc=-5),
    _net("DE", "Frankfurt", "DigitalOcean", "46.101.100"),
    _net("DE", "Nuremberg", "Contabo", "173.212.200"),
    _net("FR", "Paris", "Scaleway", "163.172.40"),
    _net("GB", "London", "DigitalOcean", "178.62.10"),
    _net("GB", "London", "Linode (Akamai)", "178.79.130"),
    _net("GB", "Manchester", "M247 (VPN)", "148.252.200"),
    _net("IN", "Bengaluru", "DigitalOcean", "139.59.10"),
    _net("IN", "Mumbai", "AWS", "13.232.40"),
    _net("BR", "São Paulo", "AWS", "18.228.40", "54.232.20"),
    _net("JP", "Tokyo", "AWS", "13.112.40"),
    _net("JP", "Tokyo", "Linode (Akamai)", "139.162.70"),
    _net("JP", "Tokyo", "Vultr", "45.32.10"),
    _net("UA", "Kyiv", "Hosting Ukraine", "91.206.200"),
    _net("UA", "Kyiv", "Hostpro", "194.28.84"),
    _net("CA", "Montreal", "OVH", "158.69.20"),
    _net("CA", "Toronto", "DigitalOcean", "159.203.10"),
    _net("AU", "Sydney", "AWS", "13.54.40"),
    _net("AU", "Sydney", "Vultr", "45.76.116"),
    _net("ES", "Madrid", "IONOS", "82.223.40", "217.76.136"),
    _net("IT", "Arezzo", "Aruba", "62.149.140", "89.46.68"),
    _net("NL", "Amsterdam", "LeaseWeb", "95.211.40"),
    _net("NL", "Haarlem", "Scaleway", "51.15.10"),
    _net("PL", "Krakow", "home.pl", "46.242.130"),
    _net("PL", "Warsaw", "OVH", "54.36.168"),
    _net("MX", "Mexico City", "IBM Cloud", "169.57.10"),
    _net("MX", "Mexico City", "Triara", "200.57.130"),
    _net("MX", "Mexico City", "KIO Networks", "201.175.10"),
)

# Browsers the demo does not list: new phones and computers, and attackers' choices.
EXTRA_BROWSERS: Final[tuple[Browser, ...]] = (
    Browser(
        "Safari",
        "iOS",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
        0,
        mobile=True,
    ),
    Browser(
        "Samsung Internet",
        "Android",
        "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko)"
        " SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        0,
        mobile=True,
    ),
    Browser(
        "Firefox",
        "Android",
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        0,
        mobile=True,
    ),
    Browser(
        "Chrome",
        "iOS",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        0,
        mobile=True,
    ),
    Browser(
        "Firefox",
        "macOS",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
        0,
        mobile=False,
    ),
    Browser(
        "Opera",
        "Windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
        0,
        mobile=False,
    ),
    Browser(
        "Chrome",
        "Linux",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/131.0.0.0 Safari/537.36",
        0,
        mobile=False,
    ),
)
ALL_BROWSERS: Final = (*BROWSERS, *EXTRA_BROWSERS)

# The version bump desktop browsers get half way through the period.
_UPGRADES: Final = (
    ("Chrome/131.0.0.0 Safari", "Chrome/132.0.0.0 Safari"),
    ("Edg/131.0.0.0", "Edg/132.0.0.0"),
    ("rv:133.0) Gecko/20100101 Firefox/133.0", "rv:134.0) Gecko/20100101 Firefox/134.0"),
)


def simulated_networks() -> tuple[Network, ...]:
    """Every network the simulator draws addresses from (for checks of the geo data)."""
    return (
        *USER_HOME_NETWORKS,
        *RESIDENTIAL_NETWORKS,
        *MOBILE_NETWORKS,
        *OFFICE_NETWORKS,
        *HOSTING_NETWORKS,
        *DATACENTER_NETWORKS,
        *ATTACKER_NETWORKS,
    )


def hosting_networks() -> tuple[Network, ...]:
    """Hosting and VPN exits: the demo's datacenters and VPNs plus this module's."""
    vpns = tuple(n for n in ATTACKER_NETWORKS if _is_hosting(n))
    return (*DATACENTER_NETWORKS, *vpns, *HOSTING_NETWORKS)


def browser_family(browser: Browser) -> str | None:
    """The browser family usertide's enrichment reports for this browser's user agent."""
    return parse_user_agent(browser.user_agent).browser


def _is_hosting(network: Network) -> bool:
    return "VPN" in network.isp or "VPS" in network.isp


def _by_country(networks: tuple[Network, ...]) -> dict[str, tuple[Network, ...]]:
    grouped: dict[str, list[Network]] = {}
    for network in networks:
        grouped.setdefault(network.country, []).append(network)
    return {country: tuple(group) for country, group in grouped.items()}


_RESIDENTIAL: Final = _by_country((*USER_HOME_NETWORKS, *RESIDENTIAL_NETWORKS))
_MOBILE: Final = _by_country(MOBILE_NETWORKS)
_OFFICES: Final = _by_country(OFFICE_NETWORKS)
_HOSTING: Final = _by_country(hosting_networks())
_FOREIGN: Final = _by_country(
    (
        *USER_HOME_NETWORKS,
        *RESIDENTIAL_NETWORKS,
        *(n for n in ATTACKER_NETWORKS if not _is_hosting(n)),
    )
)
_HOME_WEIGHTS: Final = tuple(n.weight for n in USER_HOME_NETWORKS)
_BROWSER_WEIGHTS: Final = tuple(b.share for b in BROWSERS)


@dataclass(frozen=True, slots=True)
class LoginSimConfig:
    users: int = 2_000
    days: int = 60
    seed: int = 2016
    attacks_per_type: int | None = None  # incidents of each type; None: one per 20 users
    start: datetime = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
    travel_share: float = 0.15
    office_share: float = 0.25  # of users in countries with an office network
    vpn_user_share: float = 0.03
    new_phone_share: float = 0.08
    new_computer_share: float = 0.04
    attacks_from: float = 0.25  # attacks start after this fraction of the period


# --- internals ---------------------------------------------------------------------------
_DAY_MS: Final = 86_400_000
_HOUR_MS: Final = 3_600_000
_MEDIAN_RATE: Final = 1.0  # sign-ins a day
_RATE_SIGMA: Final = 0.7
_WEEKEND_FACTOR: Final = 0.8
_HABIT_SHARE: Final = 0.8  # sign-ins near a preferred hour; the rest at any waking hour
_MOBILE_DATA: Final = 0.35  # phone sign-ins on mobile data rather than Wi-Fi
_ROAMING: Final = 0.5  # phone sign-ins abroad that keep a home-carrier address
_VPN_USE: Final = 0.5
_DHCP_CHANGE: Final = 1 / 45  # chance a day that the household address changes
_OFFICE_NAT_HOSTS: Final = (2, 30)
_TYPO: Final = 0.05  # one failed attempt before a legitimate sign-in
_FORGOT: Final = 0.01  # two to four
_UNKNOWN_ACCOUNTS: Final = 0.2  # share of credential-stuffing names that do not exist
_STUFFING_SUCCESS: Final = 0.04
# After the sign-in (see the module's docstring): per-session shares, assumed.
_LEGIT_ACTIONS: Final = (
    ("Password Changed", 0.003),
    ("Email Changed", 0.001),
    ("Payment Method Added", 0.008),
    ("Data Exported", 0.001),
    ("Two-Factor Disabled", 0.0002),
)
_PASSWORD_AFTER_FAILURES: Final = 0.08
_TAKEOVER_ACTIONS: Final = (
    ("Email Changed", 0.45),
    ("Password Changed", 0.35),
    ("Payment Method Added", 0.30),
    ("Data Exported", 0.25),
    ("Two-Factor Disabled", 0.10),
)
_TAKEOVER_QUIET: Final = 0.35
_STUFFING_QUIET: Final = 0.70
_ORDINARY_PAGES: Final = ("Order Viewed", "Product Viewed", "Settings Viewed")


class _Attempt(NamedTuple):
    timestamp_ms: int
    sequence: int  # creation order: a deterministic tie-break
    user_id: str
    ip: str
    user_agent: str
    success: bool
    attack_type: AttackType | None
    failures_before: int = 0  # failed attempts just before this one (its own burst)


@dataclass(slots=True)
class _Device:
    browser: Browser
    since: int  # first day in use
    until: int  # first day no longer in use
    weight: float


@dataclass(frozen=True, slots=True)
class _Trip:
    depart: int  # flight days: no sign-ins on these two
    back: int
    network: Network
    hotel_ip: str


@dataclass(slots=True)
class _User:
    user_id: str
    home: Network
    carrier: Network
    office: Network | None
    vpn: Network | None
    devices: list[_Device]
    rate: float
    peaks: tuple[float, ...]
    trip: _Trip | None
    upgrade_day: float

    @property
    def usual_browser(self) -> Browser:
        return max(self.devices, key=lambda d: d.weight).browser


def simulate_logins(config: LoginSimConfig | None = None) -> Iterator[dict[str, Any]]:
    """The sign-in attempts of ``config`` as Segment ``track`` events, in time order."""
    return _Simulator(config or LoginSimConfig()).events()


def simulate_sessions(config: LoginSimConfig | None = None) -> Iterator[dict[str, Any]]:
    """The sign-in attempts of ``simulate_logins`` (the same events) and, after each
    successful one, what its session does (unlabelled ``track`` events), in time order."""
    return _Simulator(config or LoginSimConfig()).events(sessions=True)


def write_jsonl(path: Path, config: LoginSimConfig | None = None) -> int:
    """Write the stream to ``path`` as JSON lines; returns the number of events."""
    return write_events(path, simulate_logins(config))


def write_events(path: Path, events: Iterable[dict[str, Any]]) -> int:
    """Write events to ``path`` as JSON lines; returns how many."""
    encoder = msgspec.json.Encoder()
    count = 0
    with path.open("wb") as out:
        for event in events:
            out.write(encoder.encode(event))
            out.write(b"\n")
            count += 1
    return count


class _Simulator:
    def __init__(self, config: LoginSimConfig) -> None:
        if config.users < 1 or config.days < 2 or (config.attacks_per_type or 0) < 0:
            raise ValueError("need at least 1 user, 2 days and no negative attack count")
        self.config = config
        self.attacks_per_type = (
            max(1, config.users // 20)
            if config.attacks_per_type is None
            else config.attacks_per_type
        )
        self.rng = Random(config.seed)
        self.start_ms = int(config.start.timestamp() * 1000)
        self.end_ms = self.start_ms + config.days * _DAY_MS
        self.weekday0 = config.start.weekday()
        self.attempts: list[_Attempt] = []
        self.users = [self._make_user(n) for n in range(1, config.users + 1)]

    def events(self, sessions: bool = False) -> Iterator[dict[str, Any]]:
        self.attempts = []
        for user in self.users:
            self._legit(user)
        self._attacks()
        self.attempts.sort()
        rng = self.rng
        actions = self._aftermath() if sessions else []
        next_action = 0
        for attempt in self.attempts:
            while next_action < len(actions) and actions[next_action][0] < attempt[:2]:
                yield actions[next_action][1]
                next_action += 1
            stamp = _stamp(attempt.timestamp_ms)
            yield {
                "type": "track",
                "event": "login",
                "messageId": seeded_uuid4(rng),
                "userId": attempt.user_id,
                "timestamp": stamp,
                "context": {"ip": attempt.ip, "userAgent": attempt.user_agent},
                "properties": {
                    "success": attempt.success,
                    "label": "legit" if attempt.attack_type is None else "attack",
                    "attack_type": attempt.attack_type,
                },
            }
        for _, action in actions[next_action:]:
            yield action

    # --- after the sign-in ------------------------------------------------------------------
    def _aftermath(self) -> list[tuple[tuple[int, int], dict[str, Any]]]:
        """What each successful sign-in's session does, keyed for merging by (time, order
        after the sign-ins of the same millisecond); from a random stream of its own."""
        rng = Random(f"aftermath-{self.config.seed}")
        out: list[tuple[tuple[int, int], dict[str, Any]]] = []
        for attempt in self.attempts:
            if not attempt.success:
                continue
            kind = attempt.attack_type
            names: list[tuple[float, str]] = []  # (minutes after the sign-in, event name)
            if kind is None:
                window = (1.0, 40.0)
                for name, share in _LEGIT_ACTIONS:
                    if name == "Password Changed" and attempt.failures_before >= 2:
                        share = _PASSWORD_AFTER_FAILURES
                    if rng.random() < share:
                        names.append((rng.uniform(*window), name))
            else:
                window = (0.5, 15.0)
                quiet = _STUFFING_QUIET if kind == "credential_stuffing" else _TAKEOVER_QUIET
                if rng.random() >= quiet:
                    drawn = [n for n, share in _TAKEOVER_ACTIONS if rng.random() < share]
                    for name in drawn or [rng.choice(_TAKEOVER_ACTIONS)[0]]:
                        names.append((rng.uniform(*window), name))
            for _ in range(rng.choice((0, 1, 1, 2))):
                names.append((rng.uniform(0.2, 30.0), rng.choice(_ORDINARY_PAGES)))
            for minutes, name in names:
                when = attempt.timestamp_ms + int(minutes * 60_000)
                if when >= self.end_ms:
                    continue
                event = {
                    "type": "track",
                    "event": name,
                    "messageId": seeded_uuid4(rng),
                    "userId": attempt.user_id,
                    "timestamp": _stamp(when),
                    "context": {"ip": attempt.ip, "userAgent": attempt.user_agent},
                    "properties": {},
                }
                out.append(((when, len(self.attempts) + len(out)), event))
        out.sort(key=lambda item: item[0])
        return out

    # --- population ---------------------------------------------------------------------
    def _make_user(self, number: int) -> _User:
        rng, config = self.rng, self.config
        home = rng.choices(USER_HOME_NETWORKS, _HOME_WEIGHTS)[0]
        offices = _OFFICES.get(home.country)
        office = rng.choice(offices) if offices and rng.random() < config.office_share else None
        vpn = None
        if rng.random() < config.vpn_user_share:
            local = _HOSTING.get(home.country)
            vpn = rng.choice(local if local and rng.random() < 0.7 else hosting_networks())
        peaks = tuple(rng.uniform(7, 23) for _ in range(rng.choice((1, 1, 2, 2, 3))))
        return _User(
            user_id=f"u_{number:06d}",
            home=home,
            carrier=rng.choice(_MOBILE[home.country]),
            office=office,
            vpn=vpn,
            devices=self._make_devices(),
            rate=_MEDIAN_RATE * math.exp(rng.gauss(0, _RATE_SIGMA)),
            peaks=peaks,
            trip=self._make_trip(home) if rng.random() < config.travel_share else None,
            upgrade_day=config.days / 2 + rng.expovariate(1 / 4),
        )

    def _make_devices(self) -> list[_Device]:
        rng, days = self.rng, self.config.days
        primary = rng.choices(BROWSERS, _BROWSER_WEIGHTS)[0]
        devices = [_Device(primary, 0, days, 1.0)]
        if rng.random() < 0.55:  # the other form factor: laptop + phone
            other = self._browser_like(mobile=not primary.mobile)
            devices.append(_Device(other, 0, days, rng.uniform(0.3, 1.0)))
        if rng.random() < 0.15:  # a tablet or a second browser
            third = rng.choices(BROWSERS, _BROWSER_WEIGHTS)[0]
            devices.append(_Device(third, 0, days, rng.uniform(0.1, 0.4)))
        self._replace_device(devices, mobile=True, share=self.config.new_phone_share)
        self._replace_device(devices, mobile=False, share=self.config.new_computer_share)
        return devices

    def _browser_like(self, *, mobile: bool) -> Browser:
        while (browser := self.rng.choices(BROWSERS, _BROWSER_WEIGHTS)[0]).mobile != mobile:
            pass
        return browser

    def _replace_device(self, devices: list[_Device], *, mobile: bool, share: float) -> None:
        rng = self.rng
        old = next((d for d in devices if d.browser.mobile == mobile), None)
        if old is None or rng.random() >= share:
            return
        day = rng.randrange(1, self.config.days)
        in_use = {d.browser.user_agent for d in devices}
        choices = [b for b in ALL_BROWSERS if b.mobile == mobile and b.user_agent not in in_use]
        # Mostly the same platform (a newer iPhone, another Android), sometimes a switch.
        same = [b for b in choices if b.os == old.browser.os]
        new = rng.choice(same if same and rng.random() < 0.7 else choices)
        old.until = day
        devices.append(_Device(new, day, self.config.days, old.weight))

    def _make_trip(self, home: Network) -> _Trip:
        rng, days = self.rng, self.config.days
        length = rng.randint(3, 14)
        depart = rng.randrange(1, max(2, days - length - 1))
        country = rng.choice([c for c in _RESIDENTIAL if c != home.country])
        network = rng.choice(_RESIDENTIAL[country])
        return _Trip(depart, depart + length, network, random_ip(network, rng))

    # --- legitimate sign-ins --------------------------------------------------------------
    def _legit(self, user: _User) -> None:
        rng = self.rng
        home_ip = random_ip(user.home, rng)
        trip = user.trip
        for day in range(self.config.days):
            if day and rng.random() < _DHCP_CHANGE:
                home_ip = random_ip(user.home, rng)
            if trip is not None and day in (trip.depart, trip.back):
                continue
            away = trip is not None and trip.depart < day < trip.back
            weekend = (self.weekday0 + day) % 7 >= 5
            devices = [d for d in user.devices if d.since <= day < d.until]
            weights = [d.weight for d in devices]
            utc_offset = trip.network.utc_offset if away and trip else user.home.utc_offset
            for _ in range(_poisson(user.rate * (_WEEKEND_FACTOR if weekend else 1.0), rng)):
                hour = self._hour(user, rng)
                device = rng.choices(devices, weights)[0].browser
                ip = self._legit_ip(user, device, home_ip, away, weekend, hour)
                user_agent = device.user_agent
                if day >= user.upgrade_day:
                    user_agent = _upgraded(user_agent)
                when = self.start_ms + day * _DAY_MS + int((hour - utc_offset) * _HOUR_MS)
                self._sign_in(user.user_id, when, ip, user_agent, None, _legit_failures(rng))

    @staticmethod
    def _hour(user: _User, rng: Random) -> float:
        if rng.random() < _HABIT_SHARE:
            return rng.gauss(rng.choice(user.peaks), 1.0) % 24
        return rng.uniform(6.5, 24)

    def _legit_ip(
        self, user: _User, device: Browser, home_ip: str, away: bool, weekend: bool, hour: float
    ) -> str:
        rng = self.rng
        if user.vpn is not None and rng.random() < _VPN_USE:
            return random_ip(user.vpn, rng)
        if away and user.trip is not None:
            if device.mobile and rng.random() < _ROAMING:
                return random_ip(user.carrier, rng)
            return user.trip.hotel_ip
        at_work = user.office is not None and not weekend and 9 <= hour < 18
        if at_work and user.office is not None and (not device.mobile or rng.random() < 0.5):
            return f"{user.office.prefixes[0]}.{rng.randint(*_OFFICE_NAT_HOSTS)}"
        if device.mobile and rng.random() < _MOBILE_DATA:
            return random_ip(user.carrier, rng)
        return home_ip

    def _sign_in(
        self,
        user_id: str,
        when_ms: int,
        ip: str,
        user_agent: str,
        attack_type: AttackType | None,
        failures: int,
        success: bool = True,
        gap_s: tuple[float, float] = (4.0, 40.0),
    ) -> int:
        """Add ``failures`` failed attempts, ``gap_s`` seconds apart, leading up to the
        attempt at ``when_ms``; returns ``when_ms``."""
        gaps = [int(self.rng.uniform(*gap_s) * 1000) for _ in range(failures)]
        when = when_ms - sum(gaps)
        for gap in gaps:
            self._add(when, user_id, ip, user_agent, False, attack_type)
            when += gap
        self._add(when_ms, user_id, ip, user_agent, success, attack_type, failures)
        return when_ms

    def _add(
        self,
        when_ms: int,
        user_id: str,
        ip: str,
        user_agent: str,
        success: bool,
        attack_type: AttackType | None,
        failures_before: int = 0,
    ) -> None:
        if self.start_ms <= when_ms < self.end_ms:
            sequence = len(self.attempts)
            self.attempts.append(
                _Attempt(
                    when_ms, sequence, user_id, ip, user_agent, success, attack_type,
                    failures_before,
                )
            )  # fmt: skip

    # --- attacks --------------------------------------------------------------------------
    def _attacks(self) -> None:
        count = self.attacks_per_type
        victims = self._victims(4 * count)
        for victim in victims[:count]:
            self._takeover(victim, "naive")
        for victim in victims[count : 2 * count]:
            self._takeover(victim, "vpn")
        for victim in victims[2 * count : 3 * count]:
            self._takeover(victim, "targeted")
        for victim in victims[3 * count :]:
            self._brute_force(victim)
        for _ in range(count):
            self._credential_stuffing()

    def _victims(self, count: int) -> list[_User]:
        if count <= len(self.users):
            return self.rng.sample(self.users, count)
        return self.rng.choices(self.users, k=count)

    def _attack_time(self, utc_offset: float, hours: tuple[float, float] = (8, 24)) -> int:
        """A moment after the warm-up, at a local hour of the given time zone."""
        rng, days = self.rng, self.config.days
        day = rng.randrange(int(days * self.config.attacks_from), days)
        hour = rng.uniform(*hours)
        return self.start_ms + day * _DAY_MS + int((hour - utc_offset) * _HOUR_MS)

    def _takeover(self, victim: _User, kind: AttackType) -> None:
        rng = self.rng
        country = victim.home.country
        if kind == "naive":
            network = rng.choice(_FOREIGN[rng.choice([c for c in _FOREIGN if c != country])])
            browser, utc_offset = rng.choice(ALL_BROWSERS), network.utc_offset
            hours = (8.0, 24.0)
        elif kind == "vpn":
            network = rng.choice(_HOSTING[country])
            browser = rng.choice(ALL_BROWSERS)
            utc_offset = rng.choice(ATTACKER_NETWORKS).utc_offset  # where the attacker sits
            hours = (8.0, 24.0)
        else:  # targeted: blends in with the victim's country, browser and daytime
            networks = [n for n in _RESIDENTIAL[country] if n is not victim.home]
            network = rng.choice(networks or _RESIDENTIAL[country])
            browser = self._same_family(victim.usual_browser)
            utc_offset, hours = victim.home.utc_offset, (8.0, 22.0)
        ip = random_ip(network, rng)
        when = self._attack_time(utc_offset, hours)
        user_agent = browser.user_agent
        if when >= self.start_ms + self.config.days / 2 * _DAY_MS:  # attackers update too
            user_agent = _upgraded(user_agent)
        typos = rng.choices((0, 1, 2), (70, 25, 5))[0]
        when = self._sign_in(victim.user_id, when, ip, user_agent, kind, typos)
        if rng.random() < 0.4:  # the attacker comes back
            for _ in range(rng.randint(1, 3)):
                when += int(rng.uniform(1, 72) * _HOUR_MS)
                self._sign_in(victim.user_id, when, ip, user_agent, kind, 0)

    def _same_family(self, usual: Browser) -> Browser:
        """The victim's own browser half the time, else another of its ua-parser family."""
        if self.rng.random() < 0.5:
            return usual
        family = browser_family(usual)
        return self.rng.choice([b for b in ALL_BROWSERS if browser_family(b) == family])

    def _brute_force(self, victim: _User) -> None:
        rng = self.rng
        if rng.random() < 0.5:
            network = rng.choice(hosting_networks())
        else:
            foreign = [c for c in _FOREIGN if c != victim.home.country]
            network = rng.choice(_FOREIGN[rng.choice(foreign)])
        when = self._attack_time(network.utc_offset, (0, 24))
        failures = rng.randint(20, 200)
        self._sign_in(
            victim.user_id,
            when + failures * 8_000,
            random_ip(network, rng),
            rng.choice(ALL_BROWSERS).user_agent,
            "brute_force",
            failures,
            success=rng.random() < 0.5,
            gap_s=(1.0, 15.0),
        )

    def _credential_stuffing(self) -> None:
        rng, users = self.rng, self.users
        hosting = hosting_networks()
        ips = [random_ip(rng.choice(hosting), rng) for _ in range(rng.randint(1, 5))]
        agents = [b.user_agent for b in rng.sample(ALL_BROWSERS, rng.choice((1, 1, 3, 6)))]
        when = self._attack_time(0.0, (0, 24))
        for _ in range(rng.randint(50, 300)):
            when += int(rng.uniform(0.5, 6.0) * 1000)
            if rng.random() < _UNKNOWN_ACCOUNTS:
                user_id, exists = f"u_{rng.randint(len(users) + 1, 10 * len(users) + 9):06d}", False
            else:
                user_id, exists = rng.choice(users).user_id, True
            success = exists and rng.random() < _STUFFING_SUCCESS
            self._add(
                when, user_id, rng.choice(ips), rng.choice(agents), success, "credential_stuffing"
            )


def _stamp(when_ms: int) -> str:
    seconds, millis = divmod(when_ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def _poisson(mean: float, rng: Random) -> int:
    """Knuth's method: fine for the small means of daily sign-ins."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _legit_failures(rng: Random) -> int:
    draw = rng.random()
    if draw < _FORGOT:
        return rng.randint(2, 4)
    return 1 if draw < _FORGOT + _TYPO else 0


def _upgraded(user_agent: str) -> str:
    for old, new in _UPGRADES:
        user_agent = user_agent.replace(old, new)
    return user_agent

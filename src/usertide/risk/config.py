"""Settings of the sign-in risk model."""

from __future__ import annotations

import msgspec

# Network owners whose addresses are servers, not homes or phones (matched as
# case-insensitive substrings of the ASN organisation; extend per deployment).
HOSTING_NETWORKS: tuple[str, ...] = (
    "amazon",
    "aws",
    "google cloud",
    "microsoft",
    "azure",
    "digitalocean",
    "linode",
    "akamai",
    "ovh",
    "hetzner",
    "scaleway",
    "vultr",
    "choopa",
    "contabo",
    "leaseweb",
    "m247",
    "datacamp",
    "cdn77",
    "hostinger",
    "hostwinds",
    "ionos",
    "alibaba",
    "tencent",
    "oracle",
    "cloudflare",
    "packet",
    "psychz",
    "quadranet",
    "colocrossing",
    "servers.com",
    "g-core",
    "content delivery network",
    "vps",
    "hosting",
    "datacenter",
    "data center",
    "vpn",
    "proton",  # Proton VPN's exits are announced as "Proton AG"
)

LOGIN_EVENT_NAMES: tuple[str, ...] = (
    "login",
    "Signed In",
    "$login",
    "user logged in",
    "User Logged In",
    "Logged In",
)


# What accounts do right after a takeover (Castle, Sift): event name → reason code of
# ``LoginAftermath``; each code's log-odds weight is in ``RiskConfig.weights``.
SENSITIVE_ACTIONS: dict[str, str] = {
    "Password Changed": "password_change",
    "$password_change": "password_change",
    "Email Changed": "email_change",
    "$email_change": "email_change",
    "Payment Method Added": "payment_method_added",
    "$payment_method_added": "payment_method_added",
    "Data Exported": "data_export",
    "$data_export": "data_export",
    "Two-Factor Disabled": "mfa_disabled",
    "$mfa_disabled": "mfa_disabled",
}


class RiskConfig(msgspec.Struct, kw_only=True, frozen=True):
    medium: float = 0.5  # score from which a sign-in is challenged
    high: float = 0.8  # score from which it is denied
    smoothing: float = 1.0  # μ: weight of the population prior in each user's estimate
    # μ of the levels whose values churn for one person (see likelihood.py); the others
    # use ``smoothing``. A household's /24 changes (DHCP, carrier NAT) where its ISP
    # does not. (μ 4 on the browser-version and user-agent levels too lost naive
    # takeovers on the development set: left at 1.)
    level_smoothing: dict[str, float] = msgspec.field(default_factory=lambda: {"prefix": 8.0})
    # learned sign-ins before a new network owner (ISP) of the account's country weighs
    familiar_logins: int = 5
    lr_weight: float = 1.0  # log-odds per nat of likelihood ratio
    bias: float = -3.0  # log-odds of an ordinary sign-in
    travel_kmh: float = 900.0
    geo_tolerance_km: float = 50.0
    failure_window: float = 600.0
    user_failures: int = 5  # failed attempts on one account within the window
    network_failures: int = 15  # failed attempts from one /24 within the window
    stuffing_window: float = 3600.0
    stuffing_users: int = 8  # distinct accounts tried from one /24 within the window
    unusual_hour_share: float = 0.03
    unusual_hour_min_logins: int = 8
    hosting_networks: tuple[str, ...] = HOSTING_NETWORKS
    # Signals of an attack in progress: a sign-in showing one is challenged at least.
    challenge_signals: tuple[str, ...] = (
        "brute_force",
        "network_brute_force",
        "credential_stuffing",
    )
    # failed attempts from a network (failure window), and most of its attempts, before
    # its credential stuffing or brute force is challenged whatever the rest says
    stuffing_failures: int = 8
    login_events: tuple[str, ...] = LOGIN_EVENT_NAMES
    sensitive_actions: dict[str, str] = msgspec.field(
        default_factory=lambda: dict(SENSITIVE_ACTIONS)
    )
    aftermath_window: float = 3600.0  # seconds after a sign-in its session's actions count
    weights: dict[str, float] = msgspec.field(
        default_factory=lambda: {
            "impossible_travel": 3.0,
            "brute_force": 2.5,
            "network_brute_force": 2.0,
            "credential_stuffing": 3.0,
            "hosting_network": 2.0,
            "unusual_hour": 0.8,
            "automation": 2.0,
            "rare_network": 1.0,
            # added when a known account signs in from a new country with a new device
            "new_country_and_device": 1.5,
            # a familiar account on another network owner (ISP) of its own country
            "new_network": 2.5,
            # added by LoginAftermath to the sign-in's log-odds, once each per sign-in
            "password_change": 2.0,
            "email_change": 3.0,
            "payment_method_added": 2.0,
            "data_export": 2.0,
            "mfa_disabled": 3.0,
        }
    )

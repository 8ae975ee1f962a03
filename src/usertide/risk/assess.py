"""One sign-in's risk: the likelihood ratio and the signals, combined into a calibrated
score, a level, an action and the reasons behind them."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from usertide.engine.base import Reason
from usertide.risk.config import RiskConfig
from usertide.risk.features import LoginFeatures
from usertide.risk.history import Count, LoginHistory
from usertide.risk.likelihood import log_likelihood_ratio
from usertide.risk.population import Population
from usertide.risk.signals import (
    hour_share,
    impossible_travel,
    is_hosting,
    recent_failures,
)

ACTIONS = {"low": "allow", "medium": "challenge", "high": "deny"}


class NetworkActivity(msgspec.Struct, frozen=True):
    """What the network (/24 or /48) of a sign-in has been doing lately."""

    failures: int = 0  # failed attempts within the failure window, this one included
    users: int = 0  # distinct accounts tried within the stuffing window, this one included
    attempts: int = 0  # attempts within the failure window, this one included
    failing_users: int = 0  # distinct accounts with a failed attempt in the failure window


class Assessment(msgspec.Struct, kw_only=True, frozen=True):
    score: float
    level: str
    action: str
    reasons: tuple[Reason, ...]
    log_lr: float
    population: int = 0  # the snapshot version that scored it (recorded with the attempt)

    def to_builtins(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


def assess(
    login: LoginFeatures,
    history: LoginHistory,
    population: Population,
    network: NetworkActivity,
    config: RiskConfig,
    found: list[Count | None] | None = None,
) -> Assessment:
    """``found``: see ``log_likelihood_ratio`` (the engine learns with it)."""
    log_lr, seen = log_likelihood_ratio(
        login,
        history,
        population,
        config.smoothing,
        found=found,
        level_smoothing=config.level_smoothing,
    )
    weights = config.weights
    reasons: list[Reason] = []
    z = config.bias + config.lr_weight * log_lr
    known = history.logins > 0

    new_country = known and seen["country"] < 0.05 and bool(login.country)
    new_device = known and seen["browser"] < 0.05 and bool(login.browser)
    if new_country:
        reasons.append(
            Reason(
                code="new_country",
                message=f"first sign-in from {login.country_name or login.country}; "
                f"before only from {_names(history.countries)}",
                data={"country": login.country, "previous": list(history.countries)},
            )
        )
    elif known and seen["network"] < 0.05 and bool(login.country):
        # Another ISP of the account's own country. The likelihood charges a new ISP
        # what it charges a new /24 of the account's own ISP (log(1 + w/μ) either way);
        # households keep their ISP while their addresses churn, so a familiar account
        # moving ISP weighs on its own (residential proxies in the victim's country).
        reasons.append(
            Reason(
                code="new_network",
                message=f"first sign-in from the network of "
                f"{login.network_owner or 'an unknown provider'}",
                data={"network": login.network_owner},
            )
        )
        if history.logins >= config.familiar_logins:
            z += weights.get("new_network", 0.0)
    if new_device:
        reasons.append(
            Reason(
                code="new_device",
                message=f"first sign-in with {login.browser}; before only with "
                f"{_names(history.browsers)}",
                data={"device": login.browser, "previous": list(history.browsers)},
            )
        )
        if new_country:
            # Both at once: how account takeovers look, and trips seldom do (a new
            # phone bought abroad is rarer than either alone). The likelihood weighs each
            # by the history behind it; this adds what a short history cannot say yet.
            z += weights.get("new_country_and_device", 0.0)

    signals: list[Reason] = []  # each adds its weight to the log-odds, below

    travel = impossible_travel(login, history, config) if login.success else None
    if travel is not None:
        signals.append(travel)
    failures = recent_failures(history, login.time, config.failure_window)
    if failures >= config.user_failures:
        _signal(
            signals,
            "brute_force",
            f"{failures} failed sign-in attempts on this account in the "
            f"last {config.failure_window / 60:.0f} minutes",
            {"failures": failures},
        )
    if network.failures >= config.network_failures:
        _signal(
            signals,
            "network_brute_force",
            f"{network.failures} failed attempts from this network "
            f"in the last {config.failure_window / 60:.0f} minutes",
            {"failures": network.failures},
        )
    if network.users >= config.stuffing_users:
        _signal(
            signals,
            "credential_stuffing",
            f"{network.users} different accounts tried from this "
            f"network in the last {config.stuffing_window / 60:.0f} minutes",
            {"accounts": network.users},
        )
    if is_hosting(login.network_owner, config):
        _signal(
            signals,
            "hosting_network",
            f"the address belongs to {login.network_owner}, a hosting "
            "or VPN provider, not a home or mobile network",
            {"owner": login.network_owner},
        )
    if login.automation:
        _signal(signals, "automation", "the browser identifies as automated or headless")
    hour = login.hour
    if (
        history.logins >= config.unusual_hour_min_logins
        and hour_share(history, hour) < config.unusual_hour_share
    ):
        _signal(
            signals,
            "unusual_hour",
            f"an unusual time for this account ({hour:02d}:00 UTC)",
            {"hour_utc": hour},
        )
    if (
        history.logins < 3
        and population.logins >= 200
        and login.country
        and population.probability("country", login.network[0], None, "") < 0.002
    ):
        _signal(
            signals,
            "rare_network",
            f"few sign-ins to this site come from {login.country_name or login.country}",
        )

    for reason in signals:
        z += weights.get(reason.code, 0.0)
        reasons.append(reason)
    score = 1.0 / (1.0 + math.exp(-z))
    if score < config.medium and _under_attack(signals, network, config):
        # Attacks in progress are challenged whatever else the sign-in looks like (as
        # Auth0 and Cognito do past their thresholds): a familiar device and place must
        # not let the sixth guess of a burst through.
        score = config.medium
    level = "high" if score >= config.high else "medium" if score >= config.medium else "low"
    return Assessment(
        score=round(score, 4),
        level=level,
        action=ACTIONS[level],
        reasons=tuple(reasons),
        log_lr=round(log_lr, 3),
        population=population.version,
    )


def _under_attack(signals: list[Reason], network: NetworkActivity, config: RiskConfig) -> bool:
    for reason in signals:
        if reason.code not in config.challenge_signals:
            continue
        if reason.code == "brute_force":
            return True
        # Many accounts (and their typos, and someone who forgot a password) behind one
        # /24 is also an office or a carrier's NAT: it is someone trying a list of
        # passwords when most attempts fail, and fail on many accounts.
        mostly_failing = network.failures >= config.stuffing_failures and (
            2 * network.failures >= max(network.attempts, 1)
        )
        if mostly_failing and (
            reason.code != "credential_stuffing"
            or 2 * network.failing_users >= config.stuffing_users
        ):
            return True
    return False


def _signal(
    signals: list[Reason], code: str, message: str, data: dict[str, Any] | None = None
) -> None:
    signals.append(Reason(code=code, message=message, data=data or {}))


def _names(items: list[str]) -> str:
    return ", ".join(items) if items else "nowhere yet"

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import maxminddb
import msgspec
import pytest

from usertide.demo.population import Network
from usertide.enrich import PACKAGED_CITY_DB, GeoIPEnricher, parse_user_agent
from usertide.evaluation.login_sim import (
    ALL_BROWSERS,
    ATTACK_TYPES,
    EXTRA_BROWSERS,
    OFFICE_NETWORKS,
    LoginSimConfig,
    browser_family,
    hosting_networks,
    simulate_logins,
    simulate_sessions,
    simulated_networks,
    write_jsonl,
)

GEO = GeoIPEnricher()
CONFIG = LoginSimConfig(users=150, days=21, seed=11, attacks_per_type=6)

Event = dict[str, Any]


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return list(simulate_logins(CONFIG))


def country(event: Event) -> str | None:
    geo = GEO.lookup(event["context"]["ip"])
    return geo.country if geo else None


def of_type(events: list[Event], attack_type: str | None) -> list[Event]:
    return [e for e in events if e["properties"]["attack_type"] == attack_type]


def home_countries(events: list[Event]) -> dict[str, str | None]:
    """Each user's most frequent country over their legitimate sign-ins."""
    seen: dict[str, Counter[str | None]] = defaultdict(Counter)
    for event in of_type(events, None):
        seen[event["userId"]][country(event)] += 1
    return {user: counts.most_common(1)[0][0] for user, counts in seen.items()}


def when(event: Event) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def test_same_seed_same_stream(events: list[Event]) -> None:
    assert list(simulate_logins(CONFIG)) == events


def test_other_seed_other_stream(events: list[Event]) -> None:
    other = list(simulate_logins(LoginSimConfig(users=150, days=21, seed=12, attacks_per_type=6)))
    assert other != events


def test_time_ordered_within_the_period(events: list[Event]) -> None:
    stamps = [when(e) for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] >= CONFIG.start
    assert stamps[-1] < CONFIG.start + timedelta(days=CONFIG.days)


def test_segment_track_shape(events: list[Event]) -> None:
    for event in events:
        assert event["type"] == "track"
        assert event["event"] == "login"
        assert event["timestamp"].endswith("Z")
        assert when(event).tzinfo == UTC
        assert set(event["context"]) == {"ip", "userAgent"}
        properties = event["properties"]
        assert isinstance(properties["success"], bool)
        if properties["label"] == "legit":
            assert properties["attack_type"] is None
        else:
            assert properties["label"] == "attack"
            assert properties["attack_type"] in ATTACK_TYPES
    assert len({e["messageId"] for e in events}) == len(events)


def test_mostly_legit_with_every_attack_type(events: list[Event]) -> None:
    kinds = Counter(e["properties"]["attack_type"] for e in events)
    assert set(kinds) == {None, *ATTACK_TYPES}
    assert kinds[None] > 0.5 * len(events)
    # Takeovers succeed; stuffing and brute force mostly fail.
    for kind in ("naive", "vpn", "targeted"):
        assert any(e["properties"]["success"] for e in of_type(events, kind))
    for kind in ("credential_stuffing", "brute_force"):
        attempts = of_type(events, kind)
        assert sum(e["properties"]["success"] for e in attempts) < 0.1 * len(attempts)


def test_legit_users_travel_and_fail_sometimes(events: list[Event]) -> None:
    homes = home_countries(events)
    legit = of_type(events, None)
    abroad = {
        e["userId"]
        for e in legit
        if e["properties"]["success"] and country(e) != homes[e["userId"]]
    }
    assert len(abroad) >= 0.05 * len(homes)
    failures = sum(not e["properties"]["success"] for e in legit)
    assert 0.02 * len(legit) < failures < 0.15 * len(legit)


def test_legit_users_change_devices_and_addresses(events: list[Event]) -> None:
    agents: dict[str, set[str]] = defaultdict(set)
    addresses: dict[str, set[str]] = defaultdict(set)
    for event in of_type(events, None):
        agents[event["userId"]].add(event["context"]["userAgent"])
        addresses[event["userId"]].add(event["context"]["ip"])
    assert sum(len(a) > 1 for a in agents.values()) > 0.5 * len(agents)
    assert sum(len(a) > 3 for a in addresses.values()) > 0.5 * len(addresses)


def test_office_networks_are_shared(events: list[Event]) -> None:
    offices = {n.prefixes[0] for n in OFFICE_NETWORKS}
    users_by_office: dict[str, set[str]] = defaultdict(set)
    for event in of_type(events, None):
        prefix = event["context"]["ip"].rsplit(".", 1)[0]
        if prefix in offices:
            users_by_office[prefix].add(event["userId"])
    assert max(len(users) for users in users_by_office.values()) >= 3


def test_naive_attacks_come_from_abroad(events: list[Event]) -> None:
    homes = home_countries(events)
    for event in of_type(events, "naive"):
        assert country(event) != homes[event["userId"]]


def test_vpn_attacks_use_a_hosting_exit_in_the_victims_country(events: list[Event]) -> None:
    homes = home_countries(events)
    hosting = {p for n in hosting_networks() for p in n.prefixes}
    for event in of_type(events, "vpn"):
        assert country(event) == homes[event["userId"]]
        assert event["context"]["ip"].rsplit(".", 1)[0] in hosting


def test_targeted_attacks_blend_in(events: list[Event]) -> None:
    homes = home_countries(events)
    families: dict[str, set[str | None]] = defaultdict(set)
    for event in of_type(events, None):
        families[event["userId"]].add(parse_user_agent(event["context"]["userAgent"]).browser)
    hosting = {p for n in hosting_networks() for p in n.prefixes}
    for event in of_type(events, "targeted"):
        assert country(event) == homes[event["userId"]]
        assert event["context"]["ip"].rsplit(".", 1)[0] not in hosting
        assert parse_user_agent(event["context"]["userAgent"]).browser in families[event["userId"]]


def test_credential_stuffing_sprays_many_accounts_from_few_addresses(events: list[Event]) -> None:
    accounts: dict[str, set[str]] = defaultdict(set)
    for event in of_type(events, "credential_stuffing"):
        accounts[event["context"]["ip"]].add(event["userId"])
    assert max(len(users) for users in accounts.values()) >= 20
    known = {e["userId"] for e in of_type(events, None)}
    sprayed = {e["userId"] for e in of_type(events, "credential_stuffing")}
    assert sprayed - known, "some names do not exist"


def test_brute_force_hammers_one_account(events: list[Event]) -> None:
    attempts = Counter((e["userId"], e["context"]["ip"]) for e in of_type(events, "brute_force"))
    assert len(attempts) == CONFIG.attacks_per_type
    assert min(attempts.values()) >= 20


def test_write_jsonl_writes_the_stream(tmp_path: Path, events: list[Event]) -> None:
    path = tmp_path / "logins.jsonl"
    assert write_jsonl(path, CONFIG) == len(events)
    assert [msgspec.json.decode(line) for line in path.read_bytes().splitlines()] == events


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        list(simulate_logins(LoginSimConfig(users=0)))


@pytest.fixture(scope="module")
def city_db() -> Iterator[maxminddb.Reader]:
    with maxminddb.open_database(PACKAGED_CITY_DB) as reader:
        yield reader


def one_address_per_record(reader: maxminddb.Reader, prefix: str) -> list[str]:
    """An address in each distinct network of the geo data that overlaps the /24, so that
    checking these checks every address of the /24."""
    addresses, host = [], 0
    while host < 256:
        _, length = reader.get_with_prefix_len(f"{prefix}.{host}")
        addresses.append(f"{prefix}.{host}")
        size = 2 ** (32 - length) if length > 24 else 256
        host = (host // size + 1) * size
    return addresses


@pytest.mark.parametrize("network", simulated_networks(), ids=lambda n: f"{n.country}-{n.isp}")
def test_every_prefix_resolves_to_its_country(network: Network, city_db: maxminddb.Reader) -> None:
    for prefix in network.prefixes:
        for address in one_address_per_record(city_db, prefix):
            geo = GEO.lookup(address)
            assert geo is not None, address
            assert geo.country == network.country, f"{address} ({network.isp})"
            assert geo.as_org, f"{address} has no network owner"


def test_extra_user_agents_parse_as_real_browsers() -> None:
    for browser in EXTRA_BROWSERS:
        device = parse_user_agent(browser.user_agent)
        assert device.browser is not None
        assert not (device.is_bot or device.is_headless or device.is_automation)
        assert (device.device_type == "mobile") == browser.mobile
    assert len({b.user_agent for b in ALL_BROWSERS}) == len(ALL_BROWSERS)
    assert {browser_family(b) for b in ALL_BROWSERS} >= {"Chrome", "Firefox", "Mobile Safari"}


SENSITIVE = {
    "Password Changed",
    "Email Changed",
    "Payment Method Added",
    "Data Exported",
    "Two-Factor Disabled",
}


@pytest.fixture(scope="module")
def sessions() -> list[Event]:
    return list(simulate_sessions(CONFIG))


def test_sessions_keep_the_sign_ins_as_they_were(
    events: list[Event], sessions: list[Event]
) -> None:
    assert [e for e in sessions if e["event"] == "login"] == events
    assert [e["timestamp"] for e in sessions] == sorted(e["timestamp"] for e in sessions)
    assert len(sessions) > len(events)


def test_session_events_follow_a_successful_sign_in_from_its_browser(sessions: list[Event]) -> None:
    # the latest successful sign-in per account and browser (a user may sign in on the
    # phone while the laptop's session goes on)
    last: dict[tuple[str, str, str], Event] = {}
    kinds: dict[str, Counter[str]] = {"legit": Counter(), "attack": Counter()}
    for event in sessions:
        key = (event["userId"], event["context"]["ip"], event["context"]["userAgent"])
        if event["event"] == "login":
            if event["properties"]["success"]:
                last[key] = event
            continue
        assert event["type"] == "track" and event["properties"] == {}  # no labels
        sign_in = last[key]
        assert timedelta(0) < when(event) - when(sign_in) <= timedelta(minutes=40)
        if event["event"] in SENSITIVE:
            kinds[sign_in["properties"]["label"]][event["event"]] += 1
    # legitimate users change passwords and e-mail addresses too, only much more rarely
    sign_ins = [e for e in sessions if e["event"] == "login"]
    legit_sessions = sum(1 for e in of_type(sign_ins, None) if e["properties"]["success"])
    assert 0 < sum(kinds["legit"].values()) < 0.05 * legit_sessions
    assert kinds["legit"]["Password Changed"] > 0
    takeovers = sum(
        1
        for e in sessions
        if e["event"] == "login"
        and e["properties"]["label"] == "attack"
        and e["properties"]["success"]
        and e["properties"]["attack_type"] != "credential_stuffing"
    )
    assert sum(kinds["attack"].values()) > 0.3 * takeovers

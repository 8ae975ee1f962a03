from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from usertide.enrich import UA_RESOLVER, UserAgentEnricher, parse_user_agent
from usertide.events import Context, Device, Event

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID_TABLET = (  # Galaxy Tab S9: Android tablets leave out the "Mobile" token
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CHROME_ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.0.0 Safari/537.36"
)
PHANTOMJS = (
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
    "PhantomJS/2.1.1 Safari/538.1"
)
CUBOT_PHONE = (  # a phone brand containing "bot" must not be taken for a crawler
    "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/96.0.4664.45 Mobile Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15"
)
SAMSUNG_TV = (
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/538.1 (KHTML, like Gecko) "
    "Version/6.0 TV Safari/538.1"
)


def make_event(user_agent: str | None) -> Event:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    return Event(
        id="evt-1",
        type="track",
        name="Signed In",
        timestamp=now,
        received_at=now,
        context=Context(user_agent=user_agent),
    )


def test_uses_the_rust_resolver() -> None:
    assert UA_RESOLVER == "ua-parser-rs"


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (
            CHROME_WINDOWS,
            Device(
                browser="Chrome",
                browser_version="124",
                os="Windows",
                os_version="10",
                device_type="desktop",
            ),
        ),
        (
            FIREFOX_WINDOWS,
            Device(
                browser="Firefox",
                browser_version="125",
                os="Windows",
                os_version="10",
                device_type="desktop",
            ),
        ),
        (
            SAFARI_IPHONE,
            Device(
                browser="Mobile Safari",
                browser_version="17",
                os="iOS",
                os_version="17.4",
                device_type="mobile",
                device_brand="Apple",
                device_model="iPhone",
            ),
        ),
        (
            CHROME_ANDROID_TABLET,
            Device(
                browser="Chrome",
                browser_version="124",
                os="Android",
                os_version="13",
                device_type="tablet",
                device_model="SM-X700",
            ),
        ),
        (
            CHROME_ANDROID_PHONE,
            Device(
                browser="Chrome Mobile",
                browser_version="124",
                os="Android",
                os_version="14",
                device_type="mobile",
                device_brand="Google",
                device_model="Pixel 8",
            ),
        ),
        (
            SAFARI_MAC,
            Device(
                browser="Safari",
                browser_version="17",
                os="Mac OS X",
                os_version="10.15",
                device_type="desktop",
                device_brand="Apple",
                device_model="Mac",
            ),
        ),
    ],
)
def test_parses_real_browsers(user_agent: str, expected: Device) -> None:
    assert parse_user_agent(user_agent) == expected


@pytest.mark.parametrize(
    ("user_agent", "device_type"),
    [
        (SAFARI_IPAD, "tablet"),
        (CUBOT_PHONE, "mobile"),
        (SAMSUNG_TV, "other"),
        ("", "other"),
    ],
)
def test_device_type(user_agent: str, device_type: str) -> None:
    assert parse_user_agent(user_agent).device_type == device_type


def test_cubot_phone_is_not_a_bot() -> None:
    assert not parse_user_agent(CUBOT_PHONE).is_bot


@pytest.mark.parametrize(
    "user_agent",
    [
        GOOGLEBOT,
        GOOGLEBOT_SMARTPHONE,
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "curl/8.5.0",
        "Wget/1.21.4",
        "python-requests/2.31.0",
        "python-httpx/0.27.0",
        "Go-http-client/1.1",
        "Java/17.0.2",
        "okhttp/4.12.0",
        "Scrapy/2.11.1 (+https://scrapy.org)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    ],
)
def test_detects_bots(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    assert device.is_bot
    assert device.device_type == "bot"
    # ua-parser's Spider placeholder brand/model ("Spider", "Desktop") is not a real device.
    assert device.device_brand is None
    assert device.device_model is None


def test_googlebot_keeps_its_name() -> None:
    device = parse_user_agent(GOOGLEBOT)
    assert (device.browser, device.browser_version) == ("Googlebot", "2")


@pytest.mark.parametrize("user_agent", [HEADLESS_CHROME, PHANTOMJS])
def test_detects_headless_browsers(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    assert device.is_headless
    assert not device.is_bot  # still a real browser engine; see UserAgentEnricher's docstring
    assert device.device_type == "desktop"


def test_headless_chrome_reports_its_browser() -> None:
    device = parse_user_agent(HEADLESS_CHROME)
    assert (device.browser, device.browser_version, device.os) == ("HeadlessChrome", "124", "Linux")


@pytest.mark.parametrize(
    "marker", ["Selenium/4.20", "WebDriver", "Playwright/1.44", "Puppeteer", "Cypress/13.8.0"]
)
def test_detects_automation_markers(marker: str) -> None:
    device = parse_user_agent(f"{CHROME_WINDOWS} {marker}")
    assert device.is_automation
    assert device.browser == "Chrome"


@pytest.mark.parametrize(
    "user_agent", [CHROME_WINDOWS, FIREFOX_WINDOWS, SAFARI_IPHONE, CHROME_ANDROID_TABLET]
)
def test_real_browsers_carry_no_flags(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    assert not device.is_bot
    assert not device.is_headless
    assert not device.is_automation


def test_enricher_sets_device() -> None:
    event = make_event(SAFARI_IPHONE)
    UserAgentEnricher().enrich(event)
    assert event.context.device == parse_user_agent(SAFARI_IPHONE)


@pytest.mark.parametrize("user_agent", [None, ""])
def test_enricher_leaves_events_without_user_agent_alone(user_agent: str | None) -> None:
    event = make_event(user_agent)
    event.context.device = Device(browser="from-client")
    UserAgentEnricher().enrich(event)
    assert event.context.device == Device(browser="from-client")


def test_events_get_their_own_device_copy() -> None:
    enricher = UserAgentEnricher()
    first, second = make_event(CHROME_WINDOWS), make_event(CHROME_WINDOWS)
    enricher.enrich(first)
    enricher.enrich(second)
    assert first.context.device is not None
    first.context.device.browser = "tampered"
    assert second.context.device == parse_user_agent(CHROME_WINDOWS)
    assert parse_user_agent(CHROME_WINDOWS).browser == "Chrome"


def test_repeated_user_agents_hit_the_cache() -> None:
    assert parse_user_agent(CHROME_WINDOWS) is parse_user_agent(CHROME_WINDOWS)


def test_cache_key_is_the_cut_string() -> None:
    # Two huge UAs sharing their first MAX_UA_LENGTH characters are one cache entry.
    assert parse_user_agent(CHROME_WINDOWS + "a" * 5000) is parse_user_agent(
        CHROME_WINDOWS + "a" * 6000
    )


def test_lone_surrogates_do_not_reach_the_rust_resolver() -> None:
    device = parse_user_agent("curl/8.5.0 \ud800")
    assert device.is_bot


def test_very_long_user_agent_is_parsed_from_its_start() -> None:
    device = parse_user_agent(CHROME_WINDOWS + " x" * 100_000)
    assert device.browser == "Chrome"


@given(st.text(max_size=600))
def test_arbitrary_user_agents_never_raise(user_agent: str) -> None:
    event = make_event(user_agent)
    UserAgentEnricher().enrich(event)
    if user_agent:
        assert event.context.device is not None
        assert event.context.device.device_type in {"desktop", "mobile", "tablet", "bot", "other"}

"""Browser, OS, device class and non-human-client flags from the User-Agent header."""

from __future__ import annotations

import importlib.util
import re
from functools import cache, lru_cache
from typing import Final

import msgspec
from ua_parser import BasicResolver, Parser, Result, load_builtins, load_lazy_builtins

from usertide.enrich.base import Enricher
from usertide.events import Device, Event

# ua-parser's "regex" resolver runs the patterns in Rust (the ua-parser-rs package, installed
# by the ua-parser[regex] extra): ~15 µs per parse; the pure-Python "basic" one is far slower.
_HAS_RUST_RESOLVER: Final = importlib.util.find_spec("ua_parser_rs") is not None

#: Which ua-parser resolver this process uses: "ua-parser-rs" or "basic".
UA_RESOLVER: Final[str] = "ua-parser-rs" if _HAS_RUST_RESOLVER else "basic"

#: Distinct user-agent strings remembered; real traffic repeats a few thousand UAs.
UA_CACHE_SIZE: Final = 10_000

#: Longer strings are cut before parsing and caching: no real UA needs more, and it bounds both
#: the regex work per miss and the cache's memory (≈ 10 MB worst case).
MAX_UA_LENGTH: Final = 1024

# Self-identifying crawlers are mostly caught by ua-parser's "Spider" device family; these add
# HTTP libraries and tools it does not flag (curl, python-requests, okhttp, ...) and generic
# crawler words. Bare "bot" is not matched on purpose: phone brands such as CUBOT contain it,
# so only "bot" followed by a version separator or the end of the string counts.
_BOT_PATTERN: Final = re.compile(
    r"bot(?:[/;)+\-]|$)|crawler|spider|crawling|slurp|scraper"
    r"|curl/|wget/|libcurl|python-requests|python-urllib|python-httpx|httpx/|aiohttp"
    r"|go-http-client|java/\d|okhttp|scrapy|libwww-perl|lwp::|apache-httpclient"
    r"|axios/|node-fetch|undici|postmanruntime|insomnia/|httpie/|guzzlehttp|faraday"
    r"|reqwest|winhttp|powershell|^python/|^ruby|^php/"
)
_HEADLESS_PATTERN: Final = re.compile(r"headless|phantomjs|slimerjs")
_AUTOMATION_PATTERN: Final = re.compile(
    r"selenium|webdriver|chromedriver|geckodriver|playwright|puppeteer|cypress|nightmare"
)
# Televisions, consoles and set-top boxes: neither desktop nor handheld.
_OTHER_DEVICE_PATTERN: Final = re.compile(
    r"smart-?tv|googletv|appletv|apple tv|crkey|hbbtv|web0s|netcast|roku"
    r"|playstation|xbox|nintendo|\btv\b"
)
_TABLET_PATTERN: Final = re.compile(r"ipad|tablet|kindle|\bsilk/|playbook|\bkf[a-z]{2,4}\b")
_MOBILE_PATTERN: Final = re.compile(r"mobi|iphone|ipod|windows phone|blackberry|opera mini")
_DESKTOP_OS: Final = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "Fedora",
        "Debian",
        "Red Hat",
        "SUSE",
        "Mint",
        "Arch Linux",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)
_DESKTOP_PATTERN: Final = re.compile(r"windows nt|macintosh|x11|cros")
# ua-parser's placeholder brands (also "Generic_Android" and friends, matched by prefix below)
# say nothing about the real manufacturer.
_PLACEHOLDER_BRANDS: Final = frozenset({"Spider"})


@cache
def _parser() -> Parser:
    """The process-wide parser, built on first use (≈ 0.13 s with the Rust resolver)."""
    if _HAS_RUST_RESOLVER:
        from ua_parser.regex import Resolver as RustResolver

        # The Rust resolver compiles the patterns itself, so the lazy matchers (which never
        # compile Python regexes) are the right input for it.
        return Parser(RustResolver(load_lazy_builtins()))
    return Parser(BasicResolver(load_builtins()))


def parse_user_agent(user_agent: str) -> Device:
    """Parse one User-Agent string into a ``Device``; never raises.

    Results are cached and shared between callers: copy one before mutating it (the enricher
    does). Only the first ``MAX_UA_LENGTH`` characters are used, and only they are cached.
    """
    return _parse_cached(user_agent[:MAX_UA_LENGTH])


@lru_cache(maxsize=UA_CACHE_SIZE)
def _parse_cached(ua: str) -> Device:
    try:
        result = _parser().parse(ua)
    except UnicodeEncodeError:
        # Lone surrogates cannot cross into the Rust resolver; they carry no UA meaning anyway.
        ua = ua.encode("utf-8", "replace").decode("utf-8")
        result = _parser().parse(ua)
    lowered = ua.lower()

    is_bot = _is_spider(result) or _BOT_PATTERN.search(lowered) is not None
    browser = result.user_agent.family if result.user_agent else None
    os_name = result.os.family if result.os else None
    brand, model = _brand_and_model(result, is_bot)
    return Device(
        browser=browser,
        browser_version=result.user_agent.major if result.user_agent else None,
        os=os_name,
        os_version=_os_version(result),
        device_type=_device_type(result, lowered, os_name, is_bot),
        device_brand=brand,
        device_model=model,
        is_bot=is_bot,
        is_headless=_HEADLESS_PATTERN.search(lowered) is not None,
        is_automation=_AUTOMATION_PATTERN.search(lowered) is not None,
    )


def _is_spider(result: Result) -> bool:
    return result.device is not None and result.device.family == "Spider"


def _os_version(result: Result) -> str | None:
    if result.os is None or result.os.major is None:
        return None
    if result.os.minor is None:
        return result.os.major
    return f"{result.os.major}.{result.os.minor}"


def _brand_and_model(result: Result, is_bot: bool) -> tuple[str | None, str | None]:
    device = result.device
    if device is None or is_bot:
        # A crawler's "device" is ua-parser's Spider placeholder ("Desktop"/"Smartphone").
        return None, None
    brand = device.brand
    if brand is not None and (brand in _PLACEHOLDER_BRANDS or brand.startswith("Generic")):
        brand = None
    return brand, device.model


def _device_type(result: Result, lowered: str, os_name: str | None, is_bot: bool) -> str:
    """desktop | mobile | tablet | bot | other, checked from the most to the least specific."""
    if is_bot:
        return "bot"
    if _OTHER_DEVICE_PATTERN.search(lowered):
        return "other"
    brand = result.device.brand if result.device else None
    if brand == "Generic_Android_Tablet" or _TABLET_PATTERN.search(lowered):
        return "tablet"
    if _MOBILE_PATTERN.search(lowered):
        return "mobile"
    if os_name == "Android":
        # Android browsers announce phones with "Mobile"; tablets leave the token out.
        return "tablet"
    if os_name == "iOS":
        return "mobile"
    if os_name in _DESKTOP_OS or _DESKTOP_PATTERN.search(lowered):
        return "desktop"
    return "other"


class UserAgentEnricher(Enricher):
    """Sets ``context.device`` from ``context.user_agent``.

    ``is_bot`` marks clients that say what they are (crawlers, HTTP libraries, CLI tools);
    ``is_headless`` and ``is_automation`` mark browsers driven by a program. The three are
    separate because a headless browser still has a real browser, OS and device class;
    "not a human" is ``is_bot or is_headless or is_automation``. Events without a
    User-Agent keep whatever ``device`` they had.
    """

    name = "useragent"

    def __init__(self) -> None:
        _parser()  # pay the parser build now, not on the first event

    def enrich(self, event: Event) -> None:
        user_agent = event.context.user_agent
        if not user_agent:
            return
        # Copied because the cached Device is shared by every event with the same UA.
        event.context.device = msgspec.structs.replace(parse_user_agent(user_agent))

"""What the collector learns about the client of a request: device type, browser and OS
from its User-Agent, bots marked, and its country from an offline IP database.

All events of a request share one client, so this runs once per request; user agents
repeat a lot, so their parsing is cached.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import maxminddb
import ua_parser
from crawlerdetect import CrawlerDetect

log = logging.getLogger(__name__)

DESKTOP, MOBILE, TABLET, BOT, OTHER = "desktop", "mobile", "tablet", "bot", "other"

# Longer user agents are junk or hostile; parse (and cache) a bounded prefix only.
MAX_UA_CHARS = 512

_TABLET_DEVICE = re.compile(r"iPad|Kindle|Tablet|Galaxy Tab|Nexus (?:7|9|10)\b|Xoom|PlayBook", re.I)
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "BlackBerry Tablet OS", "KaiOS",
                        "Firefox OS", "Symbian OS", "Tizen", "HarmonyOS", "Sailfish"})
_DESKTOP_OS = frozenset({"Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Chrome OS", "Debian", "Fedora", "Mint",
                         "Arch Linux", "Gentoo", "Red Hat", "CentOS", "SUSE", "openSUSE", "FreeBSD", "OpenBSD",
                         "NetBSD", "Solaris"})
# The device type is its own dimension, so a browser's mobile build counts as the browser.
_BROWSER_ALIASES = {
    "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome", "Mobile Safari": "Safari",
    "Firefox Mobile": "Firefox", "Firefox iOS": "Firefox", "Edge Mobile": "Edge", "Opera Mobile": "Opera",
}
_crawlers = CrawlerDetect()


@dataclass(frozen=True, slots=True)
class Client:
    """The enrichment fields of every event of one request (see ``schemas.ENRICHED_EVENT_DDL``)."""
    device: str  # desktop | mobile | tablet | bot | other
    browser: str | None = None  # family, e.g. "Chrome"; None when unknown
    os: str | None = None  # family, e.g. "Windows", "Mac OS X"; None when unknown
    country: str | None = None  # ISO 3166-1 alpha-2, e.g. "FR"; None when unknown or private

    def fields(self) -> dict[str, str | None]:
        return {"country": self.country, "device": self.device, "browser": self.browser, "os": self.os}


def _family(name: str | None) -> str | None:
    return None if name in (None, "", "Other") else name


def _device_type(user_agent: str, device: Any, os_family: str | None, is_bot: bool) -> str:
    """Desktop, mobile, tablet or bot from the parsed device and OS (ua-parser names the
    device model, not its type), with the conventions browsers follow: Android phones say
    "Mobile", Android tablets do not."""
    if is_bot:
        return BOT
    if (_TABLET_DEVICE.search(device.family) or device.brand == "Generic_Android_Tablet"
            or ("Tablet" in user_agent and "Tablet PC" not in user_agent)  # "Tablet PC": Windows laptops
            or (os_family == "Android" and "Mobile" not in user_agent)):
        return TABLET
    if os_family in _MOBILE_OS or "Mobi" in user_agent:
        return MOBILE
    if os_family in _DESKTOP_OS:
        return DESKTOP
    return OTHER


@lru_cache(maxsize=10_000)
def parse_user_agent(user_agent: str) -> Client:
    """Device type, browser and OS of a User-Agent (no country). A bot is what ua-parser
    calls a "Spider" or what CrawlerDetect's list (crawlers, HTTP libraries, headless
    browsers) matches: marked, not dropped."""
    ua = user_agent[:MAX_UA_CHARS]
    parsed = ua_parser.parse(ua).with_defaults()
    os_family = _family(parsed.os.family)
    is_bot = parsed.device.family == "Spider" or _crawlers.is_crawler(ua)
    browser = _family(parsed.user_agent.family)
    return Client(device=_device_type(ua, parsed.device, os_family, is_bot),
                  browser=_BROWSER_ALIASES.get(browser, browser) if browser else None, os=os_family)


def warm_up() -> None:
    """Load ua-parser's regexes and compile CrawlerDetect's (a fifth of a second) at start,
    not in a visitor's request."""
    parse_user_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36")


def public_address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address to look up, or None for one no database places (private, loopback,
    link-local, reserved, unparsable). An IPv4-mapped IPv6 address (a dual-stack socket's
    view of an IPv4 client) is looked up as the IPv4 address it is."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address if address.is_global else None


class CountryDb:
    """The offline IP -> country database, opened once per process (memory-mapped, so
    server workers share its pages). A missing or unreadable file is logged once and every
    country is None: the collector keeps collecting."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: Any = None
        self._lock = threading.Lock()
        self._opened = False

    def _open(self) -> Any:
        with self._lock:
            if not self._opened:
                self._opened = True
                self._reader = self._load()
            return self._reader

    def _load(self) -> Any:
        if not self.path.exists():
            log.warning("no country database at %s: events get country null. Run `parallax stack fetch` to "
                        "install it (or set PARALLAX_GEOIP_DB to a MaxMind DB country file)", self.path)
            return None
        try:
            reader = maxminddb.open_database(str(self.path), maxminddb.MODE_AUTO)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            log.warning("cannot read the country database %s (%s): events get country null", self.path, exc)
            return None
        meta = reader.metadata()
        log.info("country database %s opened (%s, built %s)", self.path, meta.database_type,
                 datetime.fromtimestamp(meta.build_epoch, timezone.utc).date())
        return reader

    def open(self) -> CountryDb:
        """Open now rather than at the first lookup, so a missing file is reported at start."""
        self._open()
        return self

    def _damaged(self, exc: Exception) -> None:
        with self._lock:
            reader, self._reader = self._reader, None  # every later country is None, without retrying
        if reader is not None:
            log.error("the country database %s failed a lookup (%s); events get country null until the "
                      "collector restarts with a good file (`parallax stack fetch` after deleting it)", self.path, exc)

    def country(self, ip: str) -> str | None:
        address = public_address(ip)
        reader = self._open() if address is not None else None
        if reader is None:
            return None
        try:
            record = reader.get(address)
        except Exception as exc:  # a damaged file: the event is still worth keeping, without its country
            self._damaged(exc)
            return None
        code = record.get("country_code") if isinstance(record, dict) else None
        # MaxMind's own GeoIP2/GeoLite2 country files nest it: {"country": {"iso_code": "FR"}}.
        if code is None and isinstance(record, dict):
            code = (record.get("country") or {}).get("iso_code")
        return code or None


def describe_client(ip: str, user_agent: str, countries: CountryDb | None) -> Client:
    """The enrichment of one request's events; the IP and the raw User-Agent stay here."""
    client = parse_user_agent(user_agent)
    country = countries.country(ip) if countries is not None else None
    return Client(device=client.device, browser=client.browser, os=client.os, country=country)

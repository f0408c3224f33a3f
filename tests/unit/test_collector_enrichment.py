"""The collector's enrichment: device/browser/OS from the User-Agent, bots marked, the
country from the offline DB-IP database (through the real collector into Kafka:
tests/stack/test_collector_enrichment.py)."""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid

import maxminddb
import pytest
from prometheus_client import REGISTRY

from collector import events, metrics
from collector.enrichment import Client, CountryDb, describe_client, parse_user_agent
from infra import geoip
from infra.settings import load_settings
from schemas import ENRICHED_EVENT_FIELDS
from tests.samples import (
    ANDROID_PHONE_FIREFOX,
    ANDROID_TABLET,
    CHROME_WINDOWS,
    GOOGLEBOT,
    GOOGLEBOT_SMARTPHONE,
    IPHONE_SAFARI,
)
from tools.synthetic import tracker_event

# The collector writes these and nothing else.
ENRICHED_FIELDS = set(ENRICHED_EVENT_FIELDS)


# --- user agent -> device, browser, OS ------------------------------------------------

@pytest.mark.parametrize("ua, device, browser, os", [
    (CHROME_WINDOWS, "desktop", "Chrome", "Windows"),
    (IPHONE_SAFARI, "mobile", "Safari", "iOS"),
    (ANDROID_TABLET, "tablet", "Chrome", "Android"),
    (ANDROID_PHONE_FIREFOX, "mobile", "Firefox", "Android"),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
     "Mobile/15E148 Safari/604.1", "tablet", "Safari", "iOS"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Safari/605.1.15", "desktop", "Safari", "Mac OS X"),
    (CHROME_WINDOWS + " Edg/131.0.2903.70", "desktop", "Edge", "Windows"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "desktop", "Firefox", "Linux"),
    (GOOGLEBOT, "bot", "Googlebot", None),
    (GOOGLEBOT_SMARTPHONE, "bot", "Googlebot", "Android"),  # a bot, though it looks like a phone
    ("curl/8.5.0", "bot", "curl", None),
    ("python-requests/2.32.3", "bot", "Python Requests", None),
    ("Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0", "tablet", "Firefox", "Android"),
    ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; Tablet PC 2.0)", "desktop", "IE", "Windows"),
    ("", "other", None, None),
    ("something unheard of", "other", None, None),
])
def test_user_agent_gives_device_browser_and_os(ua, device, browser, os):
    assert parse_user_agent(ua) == Client(device=device, browser=browser, os=os)


def test_headless_browsers_are_bots_by_the_crawler_list():
    ua = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
          "Safari/537.36")
    assert parse_user_agent(ua).device == "bot"


def test_user_agents_are_parsed_once_and_bounded():
    ua = f"Mozilla/5.0 (Windows NT 10.0) Chrome/131.0.0.0 Safari/537.36 {uuid.uuid4()}"
    before = parse_user_agent.cache_info()
    assert parse_user_agent(ua) is parse_user_agent(ua)
    after = parse_user_agent.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    huge = CHROME_WINDOWS + " x" * 50_000  # parsed by a bounded prefix, in no noticeable time
    assert parse_user_agent(huge).browser == "Chrome"


# --- IP -> country --------------------------------------------------------------------

@pytest.fixture(scope="module")
def countries() -> CountryDb:
    """The database the set-up installs (fetched here if it is not yet, as the stack's jars are)."""
    return CountryDb(geoip.fetch_country_db(load_settings())).open()


@pytest.fixture(scope="module")
def french(countries) -> dict[int, str]:
    """An address of a French network per IP version, found in the database itself (the
    data change monthly); read with maxminddb directly, not through the code under test."""
    found: dict[int, str] = {}
    with maxminddb.open_database(str(countries.path)) as reader:
        for network, record in reader:
            if record.get("country_code") == "FR" and network.version not in found:
                found[network.version] = str(network.network_address + 1)
                if len(found) == 2:
                    return found
    raise AssertionError(f"no French IPv4 and IPv6 networks in {countries.path}: {found}")


def test_well_known_addresses_get_their_country(countries, french):
    assert countries.country("8.8.8.8") == "US"
    assert countries.country(french[4]) == "FR"
    assert countries.country(french[6]) == "FR"
    assert countries.country(f"::ffff:{french[4]}") == "FR"  # an IPv4 client seen by a dual-stack socket


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "100.64.0.1", "::1", "fe80::1",
                                "", "not-an-ip", "999.1.1.1"])
def test_private_and_unparsable_addresses_have_no_country(countries, ip):
    assert countries.country(ip) is None


def test_a_missing_database_is_reported_once_and_countries_are_null(tmp_path, caplog):
    db = CountryDb(tmp_path / "absent.mmdb")
    with caplog.at_level(logging.WARNING, logger="collector.enrichment"):
        db.open()
        assert db.country("8.8.8.8") is None and db.country("1.1.1.1") is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "parallax stack fetch" in warnings[0].getMessage()


def test_an_unreadable_database_does_not_stop_the_collector(tmp_path, caplog):
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a MaxMind DB")
    with caplog.at_level(logging.WARNING, logger="collector.enrichment"):
        assert CountryDb(bad).open().country("8.8.8.8") is None
    assert "cannot read the country database" in caplog.text


def test_a_failing_lookup_leaves_countries_null(tmp_path, caplog):
    class Damaged:
        def get(self, _address):
            raise RuntimeError("corrupt search tree")

    db = CountryDb(tmp_path / "damaged.mmdb")
    db._opened, db._reader = True, Damaged()
    with caplog.at_level(logging.ERROR, logger="collector.enrichment"):
        assert db.country("8.8.8.8") is None and db.country("1.1.1.1") is None
    assert len(caplog.records) == 1 and "failed a lookup" in caplog.records[0].getMessage()


def test_maxmind_country_files_are_read_too(tmp_path):
    class GeoLite2:  # the record shape of MaxMind's own country databases
        def get(self, _address):
            return {"country": {"iso_code": "DE", "names": {"en": "Germany"}}}

    db = CountryDb(tmp_path / "GeoLite2-Country.mmdb")
    db._opened, db._reader = True, GeoLite2()
    assert db.country("8.8.8.8") == "DE"


# --- the enriched event ---------------------------------------------------------------

def _event() -> dict:
    return tracker_event(1_763_800_000_000, "https://a.test/")


def test_enriched_event_has_the_client_and_neither_ip_nor_user_agent(countries, french):
    fr = french[4]
    client = describe_client(fr, IPHONE_SAFARI, countries)
    assert client == Client(device="mobile", browser="Safari", os="iOS", country="FR")
    out = events.enrich(_event(), "s", salt=b"salt", ip=fr, user_agent=IPHONE_SAFARI, received_at=1, client=client)
    assert set(out) == ENRICHED_FIELDS  # exactly the contract: nothing else leaves the collector
    assert (out["country"], out["device"], out["browser"], out["os"]) == ("FR", "mobile", "Safari", "iOS")
    text = json.dumps(out)
    assert fr not in text and IPHONE_SAFARI not in text and "iPhone OS" not in text


def test_enrich_without_a_client_still_parses_the_user_agent():
    out = events.enrich(_event(), "s", salt=b"salt", ip="203.0.113.9", user_agent=GOOGLEBOT, received_at=1)
    assert (out["device"], out["browser"], out["country"]) == ("bot", "Googlebot", None)


def test_bots_late_events_and_countries_are_counted():
    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    counters = ("parallax_collector_events_accepted_total", "parallax_collector_bot_events_total",
                "parallax_collector_late_events_total", "parallax_collector_no_country_events_total")
    start = [sample(c) for c in counters]
    bots = events.Processed(accepted=[{}] * 3, late=1)
    metrics.count_processed(bots, parse_user_agent(GOOGLEBOT))
    people = events.Processed(accepted=[{}] * 2)
    metrics.count_processed(people, Client(device="desktop", browser="Chrome", os="Windows", country="FR"))
    gained = [sample(c) - s for c, s in zip(counters, start)]
    assert gained == [5, 3, 1, 3]


# --- fetching the database ------------------------------------------------------------

def test_fetch_keeps_an_installed_database_without_going_to_the_network(tmp_path, monkeypatch):
    installed = tmp_path / "country.mmdb"
    installed.write_bytes(b"already here")
    monkeypatch.setenv("PARALLAX_GEOIP_DB", str(installed))

    def no_network(url: str) -> bytes:
        raise AssertionError(f"fetched {url}")

    monkeypatch.setattr(geoip, "_get", no_network)
    assert geoip.fetch_country_db(load_settings()) == installed


def test_downloads_are_checked_against_the_registry():
    data = b"tarball bytes"
    sri = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    geoip.verify(data, {"tarball": "t.tgz", "integrity": sri})
    geoip.verify(data, {"tarball": "t.tgz", "shasum": hashlib.sha1(data).hexdigest()})
    with pytest.raises(geoip.GeoIPFetchError, match="checksum"):
        geoip.verify(data + b"!", {"tarball": "t.tgz", "integrity": sri})
    with pytest.raises(geoip.GeoIPFetchError, match="no checksum"):
        geoip.verify(data, {"tarball": "t.tgz"})

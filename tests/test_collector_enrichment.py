"""The collector's enrichment: device/browser/OS from the User-Agent, bots marked, the
country from the offline DB-IP database; and, through the real collector into Kafka, that
events carry them and neither the IP nor the raw User-Agent."""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid

import pytest
import requests

from collector import pipeline
from collector.enrichment import Client, CountryDb, describe_client, parse_user_agent
from infra import geoip
from schemas import ENRICHED_EVENT_FIELDS
from tests.procs import wait_for

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")
IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")
ANDROID_PHONE_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"
# The collector writes these and nothing else.
ENRICHED_FIELDS = set(ENRICHED_EVENT_FIELDS)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")


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
    from infra.settings import load_settings

    return CountryDb(geoip.fetch_country_db(load_settings())).open()


@pytest.fixture(scope="module")
def french(countries) -> dict[int, str]:
    """An address of a French network per IP version, found in the database itself (the
    data change monthly); read with maxminddb directly, not through the code under test."""
    import maxminddb

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
    return {"event_id": str(uuid.uuid4()), "type": "pageview", "ts": 1_763_800_000_000, "url": "https://a.test/"}


def test_enriched_event_has_the_client_and_neither_ip_nor_user_agent(countries, french):
    fr = french[4]
    client = describe_client(fr, IPHONE_SAFARI, countries)
    assert client == Client(device="mobile", browser="Safari", os="iOS", country="FR")
    out = pipeline.enrich(_event(), "s", salt=b"salt", ip=fr, user_agent=IPHONE_SAFARI, received_at=1, client=client)
    assert set(out) == ENRICHED_FIELDS  # exactly the contract: nothing else leaves the collector
    assert (out["country"], out["device"], out["browser"], out["os"]) == ("FR", "mobile", "Safari", "iOS")
    text = json.dumps(out)
    assert fr not in text and IPHONE_SAFARI not in text and "iPhone OS" not in text


def test_enrich_without_a_client_still_parses_the_user_agent():
    out = pipeline.enrich(_event(), "s", salt=b"salt", ip="203.0.113.9", user_agent=GOOGLEBOT, received_at=1)
    assert (out["device"], out["browser"], out["country"]) == ("bot", "Googlebot", None)


def test_bots_late_events_and_countries_are_counted():
    from prometheus_client import REGISTRY

    from collector import metrics

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    counters = ("parallax_collector_events_accepted_total", "parallax_collector_bot_events_total",
                "parallax_collector_late_events_total", "parallax_collector_no_country_events_total")
    start = [sample(c) for c in counters]
    bots = pipeline.Processed(accepted=[{}] * 3, late=1)
    metrics.count_processed(bots, parse_user_agent(GOOGLEBOT))
    people = pipeline.Processed(accepted=[{}] * 2)
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
    from infra.settings import load_settings

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


# --- through the real collector into Kafka ----------------------------------------------

@pytest.mark.stack
def test_collected_events_arrive_enriched_without_ip_or_user_agent(stack, collector_url, new_site, events_tail):
    site = new_site("enrich")
    people, bots = [_event(), _event()], [_event()]
    people[1].update(url="https://a.test/p?utm_source=news&utm_campaign=fall%20sale", referrer="https://www.bing.com/")
    # An X-Forwarded-For header is anyone's to send: the collector takes the peer's
    # address (127.0.0.1 here, no country), not the header's French one.
    spoofed = "90.0.0.1"
    for events, ua in ((people, ANDROID_TABLET), (bots, GOOGLEBOT)):
        r = requests.post(f"{collector_url}/api/collect", data=json.dumps({"site": site, "events": events}),
                          headers={"User-Agent": ua, "X-Forwarded-For": spoofed, "Content-Type": "text/plain"},
                          timeout=30)
        assert r.status_code == 202, r.text
    want = {e["event_id"] for e in people + bots}

    def all_arrived() -> dict | None:
        got = {e["event_id"]: (e, raw) for e, raw in events_tail.raw_of_site(site)}
        return got if set(got) >= want else None

    arrived = wait_for("the events in Kafka", all_arrived, timeout=60, interval=0.2)

    for e in people:
        event, raw = arrived[e["event_id"]]
        assert (event["device"], event["browser"], event["os"], event["country"]) == ("tablet", "Chrome", "Android", None)
        assert set(event) == ENRICHED_FIELDS
        for leak in (b"127.0.0.1", spoofed.encode(), ANDROID_TABLET.encode(), b"SM-X200"):
            assert leak not in raw
    sources = [tuple(arrived[e["event_id"]][0][f] for f in ("referrer_source", "utm_source", "utm_medium",
                                                              "utm_campaign")) for e in people]
    assert sources == [("direct", "(none)", "(none)", "(none)"), ("campaign", "news", "(none)", "fall sale")]
    event, raw = arrived[bots[0]["event_id"]]
    assert (event["device"], event["browser"]) == ("bot", "Googlebot")  # marked, not dropped
    assert b"Googlebot/2.1" not in raw and b"127.0.0.1" not in raw


@pytest.mark.stack
def test_behind_a_trusted_proxy_the_forwarded_client_is_enriched(stack, new_site, events_tail, log_dir):
    """With PARALLAX_TRUSTED_PROXIES=1 the collector takes the client from the last
    X-Forwarded-For entry (the proxy's), not from what the client wrote before it."""
    from tests.test_collector_hardening import start_collector

    site = new_site("proxied")
    svc, url = start_collector(log_dir, "collector-proxied", env={"PARALLAX_TRUSTED_PROXIES": "1"})
    try:
        sent = [_event()]
        # "1.1.1.1" is what the client claimed; the proxy appended the French peer it saw.
        r = requests.post(f"{url}/api/collect", data=json.dumps({"site": site, "events": sent}),
                          headers={"User-Agent": ANDROID_TABLET, "X-Forwarded-For": "1.1.1.1, 90.0.0.1"}, timeout=30)
        assert r.status_code == 202, r.text
        got = wait_for("the proxied event", lambda: events_tail.raw_of_site(site), timeout=60, interval=0.2)
    finally:
        svc.stop()
    ((event, raw),) = got
    assert event["country"] == "FR"
    assert b"90.0.0.1" not in raw and b"1.1.1.1" not in raw

"""Through the real collector into Kafka: events carry the client's device, browser, OS and
country, and neither the IP nor the raw User-Agent; behind a trusted proxy, the forwarded
client's."""
from __future__ import annotations

import json

import requests

from schemas import ENRICHED_EVENT_FIELDS
from schemas.sources import RULE_VERSION
from tests.helpers import start_collector, wait_for
from tests.samples import ANDROID_TABLET, GOOGLEBOT
from tools.synthetic import tracker_event

ENRICHED_FIELDS = set(ENRICHED_EVENT_FIELDS)


def _event() -> dict:
    return tracker_event(1_763_800_000_000, "https://a.test/")


def test_collected_events_arrive_enriched_without_ip_or_user_agent(stack, collector_url, new_site, events_tail):
    site = new_site("enrich")
    people, bots = [_event(), _event(), _event()], [_event()]
    people[1].update(url="https://a.test/p?utm_source=news&UTM_MEDIUM=email&utm_campaign=fall%20sale",
                     referrer="https://www.bing.com/")
    # the page is on another host, the referrer on a subdomain of the site's registered domain
    people[2].update(referrer="https://blog.example.test/post")
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
    sources = [tuple(arrived[e["event_id"]][0][f] for f in ("channel", "source", "utm_source", "utm_medium",
                                                              "utm_campaign")) for e in people]
    assert sources == [("Direct", "Direct", "(none)", "(none)", "(none)"),
                       ("Email", "news", "news", "email", "fall sale"),
                       ("Internal", "blog.example.test", "(none)", "(none)", "(none)")]
    assert {arrived[e["event_id"]][0]["source_rule"] for e in people} == {RULE_VERSION}
    event, raw = arrived[bots[0]["event_id"]]
    assert (event["device"], event["browser"]) == ("bot", "Googlebot")  # marked, not dropped
    assert b"Googlebot/2.1" not in raw and b"127.0.0.1" not in raw


def test_behind_a_trusted_proxy_the_forwarded_client_is_enriched(stack, new_site, events_tail, log_dir):
    """With PARALLAX_TRUSTED_PROXIES=1 the collector takes the client from the last
    X-Forwarded-For entry (the proxy's), not from what the client wrote before it."""
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

"""The collector's CORS rules over real HTTP: a preflight for any origin, events only from
the site's registered domains, a refused origin's events kept in `events.invalid`."""
from __future__ import annotations

import json

import requests

from tests.helpers import KafkaTail, wait_for
from tools.synthetic import tracker_event


def _body(site: str) -> str:
    return json.dumps({"site": site, "events": [_event()]})


def _event() -> dict:
    return tracker_event(1_763_800_000_000)


def test_collect_answers_preflight_for_any_origin(collector_url):
    r = requests.options(f"{collector_url}/api/collect", timeout=10, headers={
        "Origin": "https://anywhere.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://anywhere.test"
    assert r.headers["Access-Control-Allow-Methods"] == "POST"
    assert r.headers["Access-Control-Allow-Headers"].lower() == "content-type"
    assert int(r.headers["Access-Control-Max-Age"]) > 0 and "Origin" in r.headers["Vary"]


def test_collect_takes_events_only_from_the_sites_domains(stack, collector_url, new_site):
    site = new_site("cors")  # registered for example.test
    url = f"{collector_url}/api/collect"
    text = {"Content-Type": "text/plain;charset=UTF-8"}  # what the tracker and sendBeacon send

    allowed = requests.post(url, data=_body(site), headers={**text, "Origin": "https://www.example.test"}, timeout=30)
    assert allowed.status_code == 202, allowed.text
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://www.example.test"
    assert "Origin" in allowed.headers["Vary"]
    assert "Retry-After" in allowed.headers["Access-Control-Expose-Headers"]

    no_origin = requests.post(url, data=_body(site), headers=text, timeout=30)  # server to server
    assert no_origin.status_code == 202 and "Access-Control-Allow-Origin" not in no_origin.headers

    invalid = KafkaTail(stack, stack.kafka.topic_invalid)
    try:
        refused = _event()
        denied = requests.post(url, data=json.dumps({"site": site, "events": [refused]}),
                               headers={**text, "Origin": "https://evil.test"}, timeout=30)
        assert denied.status_code == 403
        assert "Access-Control-Allow-Origin" not in denied.headers
        error = denied.json()
        assert error["reason"] == "origin_not_allowed"
        assert "https://evil.test" in error["error"] and site in error["error"]
        (kept,) = wait_for("the refused event in events.invalid",
                             lambda: [r for r in invalid.read() if r["site"] == site], timeout=60, interval=0.2)
        assert kept["reason"] == "origin_not_allowed" and kept["event"] == refused
        assert kept["errors"] == [error["error"]]
    finally:
        invalid.close()

    local = requests.post(url, data=_body(site), headers={**text, "Origin": "http://localhost:3000"}, timeout=30)
    assert local.status_code == 403  # not registered by this site

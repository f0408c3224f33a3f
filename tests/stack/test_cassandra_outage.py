"""Stop Cassandra for a minute in the middle of a stream: the collector keeps taking events
(or answers 503, which the sender retries like the tracker), the speed layer waits and
retries, and afterwards its views are complete: nothing lost, nothing counted twice. The
serving layer meanwhile answers its reports 503 with Retry-After (JSON, no stack trace),
and serves them again once Cassandra is back."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from infra import cassandra_node
from store.accounts import generate_password
from tests.helpers import login, speed_totals, wait_for
from tools.synthetic import tracker_event

pytestmark = pytest.mark.stack
UTC = timezone.utc


def _refused(http: requests.Session, url: str) -> list[requests.Response]:
    r = http.get(url, timeout=30)
    return [r] if r.status_code == 503 else []  # (a 503 response is falsy)


def _serving_while_away(serving_url: str, api: requests.Session, site: str, cookie: str) -> None:
    browser = requests.Session()
    browser.cookies.set("parallax_session", cookie)
    for http in (api, browser):  # a script's token, a browser's session: both read Cassandra
        url = f"{serving_url}/api/v1/sites/{site}/report"
        (r,) = wait_for("a 503 from the serving layer", lambda http=http, url=url: _refused(http, url), timeout=60)
        assert r.headers["Retry-After"] == "5" and r.headers["Content-Type"] == "application/json"
        assert r.json() == {"error": "the view store (Cassandra) is unavailable; retry shortly"}
        assert "Traceback" not in r.text
    assert requests.get(f"{serving_url}/api/v1/health", timeout=30).status_code == 200


def test_speed_layer_waits_out_a_cassandra_outage(stack, speed_layer, collector_url, serving_url, api, accounts,
                                                  cassandra, new_site):
    site = new_site("outage")
    start = datetime.now(UTC) - timedelta(seconds=100)
    sent: list[str] = []
    refused = 0
    stop_sending = threading.Event()

    def send():
        nonlocal refused
        b = 0
        while not stop_sending.is_set():
            events = [tracker_event(int((start + timedelta(seconds=(b * 7 + i) % 90)).timestamp() * 1000),
                                    f"https://example.test/o{i}", visitor_id=f"o{b}-{i}") for i in range(5)]
            while True:  # like the tracker: retry the same events until they are acknowledged
                try:
                    r = requests.post(f"{collector_url}/api/collect", json={"site": site, "events": events}, timeout=30)
                    if r.status_code == 202:
                        break
                    assert r.status_code == 503, r.text
                    assert r.headers.get("Retry-After")
                except requests.RequestException:
                    pass
                refused += 1
                time.sleep(1)
            sent.extend(e["event_id"] for e in events)
            b += 1
            time.sleep(1)

    email, password = f"outage-{site}@example.test", generate_password()
    accounts.add_user(email, password, is_admin=True)
    cookie = login(serving_url, email, password).cookies["parallax_session"]
    assert api.get(f"{serving_url}/api/v1/sites/{site}/report", timeout=30).status_code == 200
    sender = threading.Thread(target=send)
    sender.start()
    try:
        wait_for("the first counts", lambda: speed_totals(cassandra, stack.cassandra.keyspace, site, start)[0] > 0, timeout=240)
        assert cassandra_node.stop(stack)
        away = time.monotonic()
        _serving_while_away(serving_url, api, site, cookie)
        time.sleep(max(0.0, 60 - (time.monotonic() - away)))
    finally:
        cassandra_node.start(stack)
        time.sleep(10)
        stop_sending.set()
        sender.join()

    wait_for("the speed views to catch up after the outage",
             lambda: speed_totals(cassandra, stack.cassandra.keyspace, site, start)[0] == len(sent), timeout=300, interval=3)
    time.sleep(6)  # a few more triggers: nothing counted twice
    assert speed_totals(cassandra, stack.cassandra.keyspace, site, start)[0] == len(sent)
    assert speed_layer.alive(), speed_layer.log_tail()
    wait_for("reports served again", lambda: api.get(f"{serving_url}/api/v1/sites/{site}/report", timeout=30).ok,
             timeout=60)
    print(f"sent {len(sent)} events; {refused} requests refused or failed during the outage and were retried")

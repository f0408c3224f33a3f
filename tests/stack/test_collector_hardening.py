"""The collector against bad input, floods and a Kafka outage, over real HTTP on the real stack:
every refusal has a clear status, reason and message; invalid events land in `events.invalid`
with theirs; the collector keeps serving; /health and /metrics tell an operator what happens;
and no event answered 2xx is missing from Kafka, nor there twice."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from infra import kafka_node
from tests.helpers import start_collector, wait_for
from tools.synthetic import tracker_event

pytestmark = pytest.mark.stack
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}  # what the tracker sends


def ev(**over: Any) -> dict:
    return tracker_event(**over)


def post(url: str, body: Any, **kwargs: Any) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) or hasattr(body, "__next__") else json.dumps(body)
    return requests.post(f"{url}/api/collect", data=data, headers={**TEXT, **kwargs.pop("headers", {})},
                         timeout=kwargs.pop("timeout", 60), **kwargs)


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, keyed by name and sorted labels."""
    r = requests.get(f"{url}/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def gained(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def assert_keeps_serving(url: str, site: str) -> None:
    r = post(url, {"site": site, "events": [ev()]})
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text


# --- whole requests refused ---------------------------------------------------------------

def _chunks(size: int) -> Iterator[bytes]:
    """A body without Content-Length (chunked), so the size is only found while reading it."""
    yield b'{"site": "s", "events": [], "pad": "'
    for _ in range(size // 65536 + 1):
        yield b"x" * 65536
    yield b'"}'


@pytest.mark.parametrize("name, body, status, reason, needle", [
    ("malformed JSON", b'{"site": "x", "events": [', 400, "malformed_body", "not valid JSON"),
    ("not an object", b"[1, 2]", 400, "malformed_body", "JSON object with 'site' and 'events'"),
    ("events not a list", {"site": "x", "events": {"a": 1}}, 400, "malformed_body", "'events' must be a list"),
    ("NaN", b'{"site": "x", "events": [{"ts": NaN}]}', 400, "malformed_body", "NaN is not valid JSON"),
    ("nested too deeply", b"[" * 50_000 + b"]" * 50_000, 400, "malformed_body", "nested too deeply"),
    ("not a site id", {"site": "<script>", "events": []}, 400, "malformed_body", "not a site id"),
    ("oversized body", {"site": "x", "events": [], "pad": "x" * 300_000}, 413, "body_too_large",
     "larger than 262144 bytes"),
    ("oversized chunked body", "chunked", 413, "body_too_large", "larger than 262144 bytes"),
    ("too many events", {"site": "x", "events": [{}] * 101}, 413, "batch_too_large", "101 events in one request; at most 100"),
])
def test_bad_requests_get_a_clear_refusal_and_the_collector_keeps_serving(collector_url, new_site, name, body,
                                                                            status, reason, needle):
    r = post(collector_url, _chunks(300_000) if body == "chunked" else body)
    assert r.status_code == status, (name, r.text)
    answer = r.json()
    assert answer["reason"] == reason and needle in answer["error"], answer
    assert_keeps_serving(collector_url, new_site("serve"))


def test_unknown_site_is_refused_and_its_events_kept(collector_url, invalid_tail):
    site = f"nobody-{uuid.uuid4().hex[:8]}"
    sent = ev()
    r = post(collector_url, {"site": site, "events": [sent]})
    assert r.status_code == 400 and r.json()["reason"] == "unknown_site" and "parallax site add" in r.json()["error"]
    (kept,) = invalid_tail.of_site(site)
    assert (kept["reason"], kept["event"]) == ("unknown_site", sent)


def test_a_page_can_read_why_its_request_was_refused(collector_url, new_site):
    """Refusals before the origin is judged are readable by the page, so the tracker drops
    a hopeless batch instead of retrying it; a refused origin's answer is not."""
    site = new_site("cors")  # registered for example.test
    page = {"Origin": "https://shop.elsewhere.test"}
    for body, status in ((b"{not json", 400), ({"site": f"nobody-{uuid.uuid4().hex[:6]}", "events": [ev()]}, 400),
                         (b"x" * 300_000, 413)):
        r = post(collector_url, body, headers=page)
        assert r.status_code == status, r.text
        assert r.headers.get("Access-Control-Allow-Origin") == page["Origin"], (status, r.headers)
    refused = post(collector_url, {"site": site, "events": [ev()]}, headers=page)
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers


# --- events rejected one by one -----------------------------------------------------------

def test_hostile_events_land_in_events_invalid_with_their_reason(collector_url, new_site, invalid_tail,
                                                                 events_tail):
    site = new_site("hostile")
    now = int(time.time() * 1000)
    formulas = {"a": "=HYPERLINK(\"https://evil.test\",\"x\")", "b": "+1+1", "c": "-2", "d": "@SUM(A1)"}
    batch = [
        ev(),  # 0 fine
        ev(ts="yesterday", type=7),  # 1 wrong types
        {"type": "pageview", "url": "https://www.example.test/"},  # 2 missing fields
        ev(url="https://www.example.test/" + "a" * 10_000),  # 3 very long
        ev(url="https://www.example.test/\x1b[2J\x1b[31mgotcha"),  # 4 a terminal escape
        ev(name="sign\nup", type="custom"),  # 5 a control character
        ev(type="custom", name="<script>alert(1)</script>", props={"html": "<img src=x onerror=alert(1)>"}),  # 6 kept
        ev(type="custom", name="formula", props=formulas),  # 7 kept as sent
        ev(url="javascript:alert(document.cookie)"),  # 8 not a page URL
        ev(ts=now + 3_600_000),  # 9 an hour in the future
        ev(ts=now - 86_400_000),  # 10 a day old: accepted, late
    ]
    r = post(collector_url, {"site": site, "events": batch})
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["accepted"] == 4
    rejected = {x["index"]: x for x in answer["rejected"]}
    assert {i: x["reason"] for i, x in rejected.items()} == {
        1: "schema_violation", 2: "schema_violation", 3: "schema_violation", 4: "control_characters",
        5: "control_characters", 8: "invalid_url", 9: "clock_skew"}
    assert {e.split(":")[0] for e in rejected[1]["errors"]} == {"/ts", "/type"}
    assert set(rejected[2]["errors"]) == {"/: 'event_id' is a required property", "/: 'ts' is a required property"}
    assert rejected[3]["errors"] == ["/url: 10025 characters, longer than the limit of 2048"]
    assert rejected[4]["errors"] == ["/url: control character U+001B at offset 25 is not allowed"]
    assert rejected[5]["errors"][0].startswith("/name: control character U+000A")
    assert rejected[8]["errors"][0].startswith("/url: must be an absolute http or https URL")
    assert "ahead of the collector's clock" in rejected[9]["errors"][0]

    kept = {r["event"].get("event_id") if isinstance(r["event"], dict) else None: r
            for r in invalid_tail.of_site(site)}
    assert len(kept) == 7
    for i, x in rejected.items():
        record = next(r for r in kept.values() if r["event"] == batch[i])
        assert (record["reason"], record["errors"]) == (x["reason"], x["errors"])

    stored = {e["event_id"]: e for e in events_tail.of_site(site)}
    assert set(stored) == {batch[i]["event_id"] for i in (0, 6, 7, 10)}
    assert stored[batch[6]["event_id"]]["name"] == "<script>alert(1)</script>"  # text, escaped by readers
    assert stored[batch[7]["event_id"]]["props"] == formulas  # the CSV export neutralises them
    assert_keeps_serving(collector_url, site)


def test_invalid_tail_prints_reasons_and_escapes_what_senders_wrote(stack, collector_url, new_site):
    site = new_site("tail")
    post(collector_url, {"site": site, "events": [ev(url="https://www.example.test/\x1b[31mred"), ev(ts="soon")]})

    def tail(*args: str) -> list[str]:
        out = subprocess.run([sys.executable, "-m", "cli", "invalid", "tail", "--site", site, *args],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout  # an escape sequence in a record never reaches the terminal
        return out.stdout.splitlines()

    lines = tail("-n", "10")
    assert len(lines) == 2
    control, schema = lines
    assert f"  {site}  control_characters  /url: control character U+001B" in control and "\\u001b[31mred" in control
    assert f"  {site}  schema_violation  /ts: 'soon' is not of type 'integer'" in schema
    assert tail("--reason", "schema_violation") == [schema]
    assert tail("-n", "1") == [schema]


# --- flood guards -------------------------------------------------------------------------

def test_rate_limits_answer_429_with_retry_after_and_which_limit(stack, log_dir, new_site):
    # One worker: the counters are per worker, so with two the test would depend on which answers.
    svc, url = start_collector(log_dir, "collector-rate-limited", workers=1,
                               env={"PARALLAX_RATE_LIMIT_IP": "6/minute", "PARALLAX_RATE_LIMIT_SITE": "10/minute"})
    try:
        busy, other = new_site("busy"), new_site("calm")
        assert post(url, {"site": busy, "events": [ev() for _ in range(8)]}).status_code == 202
        site_limited = post(url, {"site": busy, "events": [ev() for _ in range(3)]})
        assert site_limited.status_code == 429
        answer = site_limited.json()
        assert (answer["reason"], answer["limit"]) == ("rate_limited", "site")
        assert f"too many events for site {busy!r}: at most 10 events per minute" in answer["error"]
        assert 1 <= int(site_limited.headers["Retry-After"]) <= 60

        for _ in range(4):  # requests 3 to 6 from this address; another site is not held back
            assert post(url, {"site": other, "events": [ev()]}).status_code == 202
        ip_limited = post(url, {"site": other, "events": [ev()]}, headers={"Origin": "https://www.example.test"})
        assert ip_limited.status_code == 429
        answer = ip_limited.json()
        assert (answer["reason"], answer["limit"]) == ("rate_limited", "ip")
        assert "too many requests from your address: at most 6 requests per minute" in answer["error"]
        assert "127.0.0.1" not in ip_limited.text  # the address never leaves the collector
        assert 1 <= int(ip_limited.headers["Retry-After"]) <= 60
        # Readable by the page, so that the tracker honours Retry-After.
        assert ip_limited.headers["Access-Control-Allow-Origin"] == "https://www.example.test"
        assert "Retry-After" in ip_limited.headers["Access-Control-Expose-Headers"]

        metrics = scrape(url)
        assert metrics[("parallax_collector_requests_refused_total", (("reason", "rate_limited"),))] == 2
        assert requests.get(f"{url}/health", timeout=10).status_code == 200  # not rate limited
    finally:
        svc.stop()


# --- health and metrics -------------------------------------------------------------------

def test_health_says_what_is_reachable(collector_url):
    r = requests.get(f"{collector_url}/health", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok", "kafka": "ok", "cassandra": "ok"}


def test_metrics_count_what_happens(collector_url, new_site):
    site = new_site("metrics")
    now = int(time.time() * 1000)
    before = scrape(collector_url)
    for _ in range(6):  # separate connections: both workers likely answer some, /metrics adds them up
        assert post(collector_url, {"site": site, "events": [ev(), ev(ts=now - 7_200_000)]}).status_code == 202
    assert post(collector_url, {"site": site, "events": [ev(ts=now + 7_200_000), ev(url="ftp://x.test/")]}).status_code == 400
    assert post(collector_url, b"{oops").status_code == 400
    after = scrape(collector_url)

    assert gained(before, after, "parallax_collector_events_accepted_total") == 12
    assert gained(before, after, "parallax_collector_late_events_total") == 6
    assert gained(before, after, "parallax_collector_bot_events_total") == 12  # python-requests is a bot
    assert gained(before, after, "parallax_collector_events_rejected_total", reason="clock_skew") == 1
    assert gained(before, after, "parallax_collector_events_rejected_total", reason="invalid_url") == 1
    assert gained(before, after, "parallax_collector_requests_refused_total", reason="malformed_body") == 1
    assert gained(before, after, "parallax_collector_kafka_ack_seconds_count") == 7
    assert gained(before, after, "parallax_collector_request_seconds_count", status="202") == 6
    assert gained(before, after, "parallax_collector_request_seconds_count", status="400") == 2


# --- a Kafka outage (last: it stops this session's broker for a while) ----------------------

def test_kafka_outage_never_acknowledges_an_event_kafka_does_not_have(stack, log_dir, new_site, events_tail):
    site = new_site("kafka-outage")
    svc, url = start_collector(log_dir, "collector-kafka-outage")
    answers: list[tuple[int | None, str | None, list[str], float]] = []  # status, Retry-After, event ids, when
    stop_sending = threading.Event()

    def send() -> None:
        while not stop_sending.is_set():
            events = [ev() for _ in range(5)]
            try:
                r = post(url, {"site": site, "events": events})
                answers.append((r.status_code, r.headers.get("Retry-After"), [e["event_id"] for e in events],
                                time.monotonic()))
            except requests.RequestException:  # the collector itself never goes away here
                answers.append((None, None, [e["event_id"] for e in events], time.monotonic()))
            time.sleep(0.1)

    def count(status: int, since: float = 0.0) -> int:
        return sum(1 for s, _, _, t in list(answers) if s == status and t >= since)

    senders = [threading.Thread(target=send) for _ in range(2)]
    for t in senders:
        t.start()
    try:
        wait_for("acknowledged requests before the outage", lambda: count(202) >= 5, timeout=60, interval=0.2)
        assert kafka_node.stop(stack)
        stopped = time.monotonic()
        wait_for("503s while Kafka is down", lambda: count(503, stopped) >= 4, timeout=180, interval=0.5)
        wait_for("health to say Kafka is unreachable",
                 lambda: requests.get(f"{url}/health", timeout=10).json()["kafka"] == "unreachable", timeout=30)
        health = requests.get(f"{url}/health", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
    finally:
        kafka_node.start(stack)
        restarted = time.monotonic()
    try:
        wait_for("acknowledged requests after the restart", lambda: count(202, restarted) >= 5, timeout=180,
                 interval=0.5)
    finally:
        stop_sending.set()
        for t in senders:
            t.join()
        svc.stop()

    in_kafka = Counter(e["event_id"] for e in events_tail.of_site(site))
    acknowledged = [i for s, _, ids, _ in answers if s is not None and 200 <= s < 300 for i in ids]
    assert acknowledged and all(in_kafka[i] == 1 for i in acknowledged), \
        [(i, in_kafka[i]) for i in acknowledged if in_kafka[i] != 1][:10]
    refused = [(s, retry) for s, retry, _, _ in answers if s is None or not 200 <= s < 300]
    assert refused and all(s == 503 and retry and int(retry) > 0 for s, retry in refused), refused[:10]
    late_arrivals = sum(in_kafka[i] for s, _, ids, _ in answers if s == 503 for i in ids)
    print(f"{len(acknowledged)} events acknowledged, all in Kafka once; {len(refused)} requests refused with 503 "
          f"({late_arrivals} of their events reached Kafka after all: the sender's retry is a duplicate the layers drop)")

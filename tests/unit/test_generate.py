"""`parallax generate` and the demo's sample site, without the stack.

Pure: the traffic model (deterministic, the session gap rule, realistic mixes) and the
truth summary against an independent recount. Over HTTP on 127.0.0.1: the sender against a
scripted collector (retries, refusals, a clean stop) and the sample site's pages. On the
stack: tests/stack/test_generate.py and tests/browser/test_sample_site.py."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import takewhile
from typing import Any

import pandas as pd
import pytest
import requests
from jsonschema import Draft202012Validator

from collector.enrichment import parse_user_agent
from schemas import event_schema
from tests.helpers import wait_for
from tools.generator.catalog import BOTS, BROWSERS, TEMPLATES, Agent, Mix
from tools.generator.model import (
    LATE_MAX_MS,
    LATE_MIN_MS,
    MINUTE_MS,
    SESSION_GAP_MS,
    Delivery,
    Model,
    Visitor,
    site_specs,
    take_events,
)
from tools.generator.run import Config, plan, template_goals
from tools.generator.sender import Sender, Stats, send_all
from tools.generator.truth import TruthWriter, read_truth, records_of, row_of, summarize, summary_path
from tools.sample_site import GOALS, SampleSite
from views.goals import Goal, validate_goal

START = 1_790_000_000_000  # a fixed clock for the pure tests
SITES = site_specs(4, "t-")


def _deliveries(seed: int = 3, hours: float = 6, rate: float = 4, start: int = START, **mix: float) -> list[Delivery]:
    model = Model(SITES, seed=seed, start_ms=start, rate=rate, mix=Mix(**mix))
    end = start + int(hours * 3600_000)
    out = []
    for d in model.deliveries():
        if d.send_at > end:
            return out
        out.append(d)
    raise AssertionError("unreachable")


def _all_records(deliveries: list[Delivery]) -> list[dict]:
    """What the truth holds when the collector accepts everything: repeats twice."""
    seen: set[str] = set()
    out = []
    for d in deliveries:
        for _ in range(2 if d.repeat else 1):
            for r in records_of(d, range(len(d.events)), d.send_at):
                r["duplicate"] = r["event_id"] in seen
                seen.add(r["event_id"])
                out.append(r)
    return out


@pytest.fixture(scope="module")
def traffic() -> list[Delivery]:
    return _deliveries()


# --- the model -------------------------------------------------------------------------

def test_the_model_is_deterministic_for_a_seed_and_start():
    def shape(ds: list[Delivery], start: int = START) -> list:
        return [(d.send_at - start, d.site, d.agent, d.late_ms, d.repeat,
                 [(e["type"], e["ts"] - start, e["url"], e["referrer"], e.get("props")) for e in d.events]) for d in ds]

    a, b = _deliveries(seed=5, hours=1), _deliveries(seed=5, hours=1)
    assert a == b and len(a) > 100
    assert shape(_deliveries(seed=6, hours=1)) != shape(a)
    # Another start: the same traffic, moved; fresh ids, so that a second run is not
    # taken for copies of the first's events.
    later = _deliveries(seed=5, hours=1, start=START + 3600_000)
    assert shape(later, START + 3600_000) == shape(a)
    assert not {e["event_id"] for d in later for e in d.events} & {e["event_id"] for d in a for e in d.events}


def test_visits_keep_to_the_session_gap(traffic):
    """Inside a visit, events are less than the gap apart; a visitor's next visit starts
    more than the gap after their last event."""
    events: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for d in traffic:
        for e in d.events:
            events[d.visitor].append((e["ts"], d.session))
    sessions_per_visitor = Counter()
    for visitor_events in events.values():
        visitor_events = sorted(set(visitor_events))
        for (t0, s0), (t1, s1) in zip(visitor_events, visitor_events[1:]):
            assert (t1 - t0 <= SESSION_GAP_MS) == (s0 == s1), (t0, s0, t1, s1)
        sessions_per_visitor[len({s for _, s in visitor_events})] += 1
    assert sessions_per_visitor[1] and sessions_per_visitor[2] and sum(sessions_per_visitor.values()) > 200


def test_requests_are_what_a_tracker_sends(traffic):
    validator = Draft202012Validator(event_schema(2), format_checker=Draft202012Validator.FORMAT_CHECKER)
    for d in traffic:
        assert 1 <= len(d.events) <= 20
        assert len({e["visitor_id"] for e in d.events}) == 1 and d.events[0]["visitor_id"] == d.visitor
        assert all(e["ts"] + d.late_ms <= d.send_at for e in d.events)  # never sent before it happened
        for e in d.events:
            assert not list(validator.iter_errors(e)), e
    assert [d.send_at for d in traffic] == sorted(d.send_at for d in traffic)


def test_the_traffic_has_the_mix_of_real_traffic(traffic):
    records = [r for r in _all_records(traffic) if not r["duplicate"]]
    kinds = Counter(r["type"] for r in records)
    assert kinds["pageview"] > kinds["impression"] > kinds["click"] > 0 and kinds["custom"] > 0
    assert all(r["props"]["element"] for r in records if r["type"] == "impression")
    assert {r["name"] for r in records if r["type"] == "custom"} >= {"purchase", "signup", "copy_code"}
    assert {r["device"] for r in records} == {"desktop", "mobile", "tablet", "bot"}
    def host(url: str | None) -> str | None:
        return url.split("/")[2] if url else None

    pageviews = [r for r in records if r["type"] == "pageview"]
    referrers = Counter(host(r["referrer"]) for r in pageviews if host(r["referrer"]) != host(r["url"]))
    assert referrers[None] and referrers["www.google.com"] and referrers["news.ycombinator.com"]
    assert referrers["partner.example.org"]  # other sites
    assert any("utm_campaign=spring-sale" in r["url"] for r in records)
    assert any(host(r["referrer"]) == host(r["url"]) for r in pageviews)  # page flows: the previous page
    late = {r["event_id"]: r["late_ms"] for r in records if r["late_ms"]}
    assert late and all(LATE_MIN_MS <= ms <= LATE_MAX_MS for ms in late.values())
    assert sum(d.repeat for d in traffic) > 0
    summary = summarize([row_of(r) for r in _all_records(traffic)], template_goals(SITES))
    for site, s in summary.items():
        assert 0.2 < s["bounces"] / s["sessions"] < 0.8, site
        assert all(n > 0 for n in s["conversions"].values()), (site, s["conversions"])
        assert s["duplicates_sent"] > 0 and s["late_events"] > 0


@pytest.mark.parametrize("agent", BROWSERS + BOTS, ids=lambda a: f"{a.device}-{a.browser}-{a.os}")
def test_user_agents_enrich_as_catalogued(agent: Agent):
    client = parse_user_agent(agent.user_agent)
    assert (client.device, client.browser, client.os) == (agent.device, agent.browser, agent.os)
    # --cookieless appends the visitor's token: still the same browser.
    model = Model(SITES, seed=1, start_ms=START, rate=1, explicit_ids=False)
    tokened = parse_user_agent(model.user_agent(Visitor("v" + "3f" * 12, SITES[0], agent)))
    assert (tokened.device, tokened.browser, tokened.os) == (agent.device, agent.browser, agent.os)


def test_site_specs_cycle_templates_and_zones():
    specs = site_specs(6, "x-")
    assert [s.site for s in specs] == ["x-shop", "x-blog", "x-docs", "x-app", "x-shop2", "x-blog2"]
    assert [s.timezone for s in specs[:4]] == ["Europe/Paris", "America/New_York", "UTC", "Asia/Kolkata"]
    assert specs[0].host == "www.x-shop.example"
    for template in TEMPLATES:  # every link and element target is a page of the site
        paths = set(template.by_path())
        for page in template.pages:
            assert {p for p, _ in page.links} <= paths and {e.target for e in page.elements if e.target} <= paths


def test_plans_place_traffic_in_time():
    now = START
    _, live = plan(Config("x", rate=10, seed=2), SITES, now)
    first_ten_minutes = list(takewhile(lambda d: d.send_at < now + 10 * MINUTE_MS, live))
    assert min(d.send_at for d in first_ten_minutes) >= now  # nothing before the run started
    assert 0.8 * 6000 < sum(len(d.events) for d in first_ten_minutes) < 1.2 * 6000  # 10 events/s from the start

    _, backfill = plan(Config("x", rate=0, events=777, window_s=2 * 3600, seed=2), SITES, now)
    sent = list(backfill)
    assert sum(len(d.events) for d in sent) == 777
    assert max(d.send_at for d in sent) == now  # ends now: nothing is dated in the future
    assert now - 3 * 3600_000 < min(d.send_at for d in sent) < now - 3600_000


def test_take_events_cuts_exactly():
    ds = list(take_events(iter(_deliveries(hours=0.5)), 101))
    assert sum(len(d.events) for d in ds) == 101


# --- the truth ---------------------------------------------------------------------------

def _segments_match(pattern: str, path: str) -> bool:
    """Goal patterns, independently: "*" is one whole segment, a trailing "**" any rest."""
    if pattern.endswith("/**"):
        return path.startswith(pattern[:-2])
    want, got = pattern.split("/"), path.split("/")
    return len(want) == len(got) and all(w in ("*", g) for w, g in zip(want, got))


def _recount(records: list[dict], goals: list) -> dict[str, dict]:
    df = pd.DataFrame(records).drop_duplicates("event_id").sort_values(["site", "visitor", "ts"])
    df["new_session"] = df.groupby(["site", "visitor"])["ts"].diff().fillna(SESSION_GAP_MS + 1) > SESSION_GAP_MS
    df["session_no"] = df.groupby(["site", "visitor"])["new_session"].cumsum()
    per_session = df.assign(pv=df["type"] == "pageview").groupby(["site", "visitor", "session_no"])["pv"].sum()
    out = {}
    for site, rows in df.groupby("site"):
        sessions = per_session.loc[site]
        conversions = {}
        for g in (g for g in goals if g.site == site):
            if g.kind == "page":
                hit = rows[(rows["type"] == "pageview") & rows["path"].map(lambda p, g=g: _segments_match(g.pattern, p))]
            else:
                hit = rows[rows["name"].fillna(rows["type"]) == g.pattern]
            conversions[g.name] = len(hit)
        out[site] = {"events": len(rows), "pageviews": int((rows["type"] == "pageview").sum()),
                     "visitors": rows["visitor"].nunique(), "sessions": len(sessions),
                     "bounces": int((sessions == 1).sum()), "conversions": conversions,
                     "model_sessions": rows["session"].nunique()}
    return out


def test_the_summary_equals_an_independent_recount(traffic):
    records = _all_records(traffic)
    goals = template_goals(SITES)
    summary = summarize([row_of(r) for r in records], goals)
    recount = _recount(records, goals)
    assert set(summary) == set(recount) == {s.site for s in SITES}
    for site, expected in recount.items():
        got = summary[site]
        assert got["sessions"] == expected.pop("model_sessions")  # the model's visits are the sessions
        assert {k: got[k] for k in expected} == expected
        dup = Counter(r["event_id"] for r in records if r["site"] == site)
        assert got["duplicates_sent"] == sum(n - 1 for n in dup.values()) > 0


def test_truth_files_round_trip(tmp_path, traffic):
    for name in ("t.jsonl", "t.parquet"):
        writer = TruthWriter(tmp_path / name)
        for d in traffic[:300]:
            writer.accept(d, range(len(d.events)), d.send_at)
        writer.close()
        back = read_truth(tmp_path / name)
        expected = [r for d in traffic[:300] for r in records_of(d, range(len(d.events)), d.send_at)]
        if name.endswith(".parquet"):  # property values as strings, the way the collector keeps them
            for r in expected:
                r["props"] = {k: json.dumps(v) if isinstance(v, bool) else str(v)
                              for k, v in r["props"].items()} if r["props"] else None
        assert back == expected


# --- the sender, against a stand-in collector ------------------------------------------

class FakeCollector(ThreadingHTTPServer):
    """Answers POST /api/collect from a script of statuses (then 202), remembering each
    request's headers and body; site "nope" is unknown (400)."""

    daemon_threads = True

    def __init__(self, script: list[tuple[int, dict[str, str]]] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _FakeHandler)
        self.script = list(script or [])
        self.requests: list[tuple[dict[str, str], dict]] = []
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def accepted_events(self) -> int:
        with self.lock:
            return sum(len(body["events"]) for headers, body in self.requests if headers["_status"] == "202")


class _FakeHandler(BaseHTTPRequestHandler):
    server: FakeCollector

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            status, extra = self.server.script.pop(0) if self.server.script else (202, {})
            if body["site"] == "nope":
                status = 400
            self.server.requests.append(({**dict(self.headers), "_status": str(status)}, body))
        answer = json.dumps({"accepted": len(body["events"]), "rejected": []} if status == 202 else
                            {"error": "no"}).encode()
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: Any) -> None:
        pass


def test_the_sender_retries_like_the_tracker_and_keeps_only_acknowledged_events(tmp_path, traffic):
    collector = FakeCollector([(503, {"Retry-After": "0"}), (429, {"Retry-After": "0"})])
    try:
        batch = [d for d in traffic if not d.repeat][:5]
        repeated = next(d for d in traffic if d.repeat)
        unknown = Delivery(0, "nope", "v0", "v0/1", batch[0].agent, "curl/8", batch[0].events)
        stats, stop = Stats(), threading.Event()
        writer = TruthWriter(tmp_path / "truth.jsonl")
        sender = Sender(collector.url, stats, stop, origins={batch[0].site: "https://www.example.test"})
        send_all([batch[0], unknown, *batch[1:], repeated], sender, writer, workers=1)
        writer.close()
    finally:
        collector.shutdown()
    statuses = [h["_status"] for h, _ in collector.requests]
    assert statuses[:3] == ["503", "429", "202"] and statuses.count("400") == 1
    assert stats.retries == 2 and stats.refused == len(unknown.events)
    sent = [*batch, repeated]
    truth = read_truth(tmp_path / "truth.jsonl")
    assert Counter(r["event_id"] for r in truth) == Counter(
        e["event_id"] for d in [*sent, repeated] for e in d.events)
    assert sum(r["duplicate"] for r in truth) == len(repeated.events)
    headers, body = collector.requests[2]
    assert headers["Content-Type"].startswith("text/plain") and headers["User-Agent"] == batch[0].user_agent
    assert headers.get("Origin") == ("https://www.example.test")
    assert body == {"site": batch[0].site, "events": list(batch[0].events)}


def test_generate_stops_cleanly_on_ctrl_c(tmp_path):
    """SIGINT: the requests in flight finish, and the truth and its summary are written."""
    collector = FakeCollector()
    truth = tmp_path / "truth.jsonl"
    cmd = [sys.executable, "-m", "cli", "generate", "--no-register", "--sites", "2", "--prefix", "fake-",
           "--rate", "200", "--collector", collector.url, "--truth", str(truth)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("requests at the stand-in collector", lambda: len(collector.requests) >= 20, timeout=60, interval=0.2)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        collector.shutdown()
    assert child.returncode == 0, out
    records = read_truth(truth)
    assert len(records) == collector.accepted_events() > 0
    summary = json.loads(summary_path(truth).read_text())
    assert summary["run"]["stopped"] is True
    assert summary["totals"]["events"] == len({r["event_id"] for r in records})
    assert "fake-shop" in out and "truth:" in out


# --- the sample site ---------------------------------------------------------------------

@pytest.fixture
def sample_site() -> Iterator[Any]:
    server = SampleSite(0, "demo", "http://127.0.0.1:8001", "http://127.0.0.1:8000").start()
    yield server
    server.stop()


def test_the_sample_site_serves_its_pages_with_the_tracker(sample_site):
    tag = '<script defer data-site="demo" src="http://127.0.0.1:8001/js/tracker.js"></script>'
    pages = {path: requests.get(sample_site.url + path, timeout=10) for path in
             ("/", "/pricing", "/blog/lambda-architecture", "/signup", "/signup?plan=pro")}
    for path, r in pages.items():
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), path
        assert r.text.count(tag) == 1, path
        for link in re.findall(r'href="(/[^"]*)"', r.text):  # every internal link is served
            assert requests.get(sample_site.url + link, timeout=10).status_code == 200, (path, link)
    assert 'data-parallax-element="cta"' in pages["/"].text
    assert 'parallax("signup", {plan:' in pages["/signup"].text
    assert "{{" not in "".join(r.text for r in pages.values())
    assert requests.get(sample_site.url + "/nope", timeout=10).status_code == 404
    assert requests.get(sample_site.url + "/../__init__.py", timeout=10).status_code == 404


def test_the_sample_sites_goals_are_valid():
    for name, kind, pattern in GOALS:
        validate_goal(Goal("demo", name, kind, pattern))

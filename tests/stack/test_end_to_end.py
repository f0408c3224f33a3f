"""The whole Lambda loop on the real stack: tracker-shaped HTTP requests -> collector ->
Kafka -> speed layer -> Cassandra -> report API; the archive -> Airflow DAG (dag.test) ->
batch views -> boundary; the merged report against an independent count."""
from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import socketio

from infra.clients import TopicReader
from infra.master import read_table
from tests.helpers import wait_for
from tools.synthetic import tracker_event

pytestmark = pytest.mark.stack
UTC = timezone.utc
REPO = Path(__file__).resolve().parents[2]


def ev(ts: datetime, visitor: str | None, type_: str = "pageview", path: str = "/") -> dict:
    return tracker_event(int(ts.timestamp() * 1000), f"https://example.test{path}", type_,
                         referrer="https://search.example/?q=x", **({"visitor_id": visitor} if visitor else {}))


def expected_hourly(events: list[dict], cookieless_id: str) -> dict[datetime, tuple[int, int]]:
    """Independent count: dedupe by event_id, bucket by hour, count pageviews and visitors."""
    seen: dict[str, dict] = {}
    for e in events:
        seen.setdefault(e["event_id"], e)
    pageviews: dict[datetime, int] = defaultdict(int)
    visitors: dict[datetime, set[str]] = defaultdict(set)
    for e in seen.values():
        hour = datetime.fromtimestamp(e["ts"] / 1000, UTC).replace(minute=0, second=0, microsecond=0)
        pageviews[hour] += e["type"] == "pageview"
        visitors[hour].add(e.get("visitor_id") or cookieless_id)
    return {h: (pageviews[h], len(visitors[h])) for h in visitors}


def report(api: requests.Session, serving_url: str, site: str, **params) -> dict:
    r = api.get(f"{serving_url}/api/v1/sites/{site}/report", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def run_nightly_dag(day: datetime):
    """A manual run for ``day``, as ops trigger one (the `day` parameter)."""
    # Airflow reads its configuration when first imported: after the session's settings
    # point it at an Airflow home of the tests' own.
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415

    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("parallax_nightly")
    return dag.test(run_conf={"day": day.date().isoformat()})


def test_lambda_loop_end_to_end(stack, speed_layer, collector_url, serving_url, api, admin_token, new_site, spark):
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if now - today < timedelta(minutes=20):  # yesterday must have ended, plus the batch grace
        pytest.skip("too close to midnight UTC for 'today' and 'yesterday' to be unambiguous")
    yesterday = today - timedelta(days=1)
    site = new_site("e2e")

    live_updates: list[dict] = []
    sio = socketio.Client()
    sio.on("metrics", lambda data: live_updates.append(data))
    sio.connect(serving_url, transports=["websocket"], wait_timeout=20, auth={"token": admin_token})
    sio.emit("subscribe", {"site": site})

    recent = [now - timedelta(seconds=s) for s in (150, 140, 95, 80, 40, 20, 10)]
    today_events = [
        ev(recent[0], "v1", path="/"), ev(recent[1], "v1", path="/pricing"), ev(recent[2], "v2"),
        ev(recent[3], "v3", path="/blog"), ev(recent[4], "v4", type_="click"),
        ev(recent[5], None), ev(recent[6], None, path="/about"),  # cookieless: id derived by the collector
    ]
    late_events = [  # dated yesterday: the speed layer's watermark leaves them to the batch layer
        ev(yesterday + timedelta(hours=10, minutes=1), "v1"),
        ev(yesterday + timedelta(hours=10, minutes=7), "v5"),
        ev(yesterday + timedelta(hours=15, minutes=30), "v5", path="/pricing"),
        ev(yesterday + timedelta(hours=23, minutes=59, seconds=59), "v6"),
    ]
    invalid = {"event_id": str(uuid.uuid4()), "type": "pageview", "url": "https://example.test/"}  # no ts
    headers = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) ParallaxTest/1.0", "Content-Type": "text/plain"}

    r = requests.post(f"{collector_url}/api/collect", data=json.dumps({"site": site, "events": today_events + [invalid]}),
                      headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == len(today_events)
    assert [rej["index"] for rej in body["rejected"]] == [len(today_events)]
    assert any("ts" in err for err in body["rejected"][0]["errors"])

    # A retried batch (same event ids) and the late events, in a second request.
    retry = [today_events[0], late_events[1]]
    r = requests.post(f"{collector_url}/api/collect", json={"site": site, "events": late_events + retry},
                      headers={"User-Agent": headers["User-Agent"]}, timeout=30)
    assert r.status_code == 202 and r.json() == {"accepted": len(late_events) + 2, "rejected": []}

    sent = today_events + late_events + retry
    cookieless = "__cookieless__"
    expected = expected_hourly(sent, cookieless)
    exp_today = {h: v for h, v in expected.items() if h >= today}
    exp_today_pageviews = sum(p for p, _ in exp_today.values())

    # Speed layer: today's numbers appear in the report, not final, duplicates dropped.
    def today_report():
        rep = report(api, serving_url, site, **{"from": today.date().isoformat(), "granularity": "minute"})
        return rep if rep["totals"]["pageviews"] == exp_today_pageviews else None

    rep = wait_for("today's pageviews in the report", today_report, timeout=180, interval=2)
    assert rep["totals"]["visitors"] == 5  # v1..v4 and one cookieless visitor
    assert all(not b["final"] for b in rep["buckets"])

    # Realtime: the last five minutes and the current one, from the speed views.
    rt = api.get(f"{serving_url}/api/v1/sites/{site}/realtime", timeout=30).json()
    since = datetime.fromisoformat(rt["minutes"][0]["start"]).timestamp() * 1000
    in_window = [e for e in {e["event_id"]: e for e in today_events}.values() if e["ts"] >= since]
    assert len(rt["minutes"]) == 6 and rt["minutes"][-1]["start"] == rt["current_minute"]["start"]
    assert rt["visitors_last_5_minutes"] == len({e.get("visitor_id") or cookieless for e in in_window})
    assert sum(m["pageviews"] for m in rt["minutes"]) == sum(e["type"] == "pageview" for e in in_window)

    # The live push reached the site's room.
    wait_for("a live update for the site", lambda: [u for u in live_updates if u["site"] == site], timeout=60)
    sio.disconnect()

    # The archive keeps every event, duplicates and late ones included.
    master = str(stack.paths.master_dir)
    wait_for("the archive to hold every event sent",
             lambda: read_table(spark, master).where(f"site = '{site}'").count() == len(sent), timeout=120, interval=3)

    # Nightly batch for yesterday, through Airflow.
    dag_run = run_nightly_dag(yesterday)
    assert str(dag_run.state) in ("success", "DagRunState.SUCCESS"), dag_run.state

    merged = report(api, serving_url, site, **{"from": yesterday.date().isoformat(), "to": today.date().isoformat(),
                                          "granularity": "hour"})
    assert merged["boundary"] == today.isoformat()
    assert len(merged["buckets"]) == 48
    for bucket in merged["buckets"]:
        start = datetime.fromisoformat(bucket["start"])
        pageviews, visitors = expected.get(start, (0, 0))
        assert (bucket["pageviews"], bucket["visitors"]) == (pageviews, visitors), bucket
        assert bucket["final"] is (start < today), bucket
    distinct = {e.get("visitor_id") or cookieless for e in sent}
    assert merged["totals"] == {"pageviews": sum(p for p, _ in expected.values()), "visitors": len(distinct)}

    day = report(api, serving_url, site, **{"from": yesterday.date().isoformat(), "to": yesterday.date().isoformat(),
                                       "granularity": "day"})
    assert day["buckets"] == [{"start": yesterday.isoformat(), "final": True, "pageviews": 4, "visitors": 3}]

    # Breakdown by page over both days: yesterday's batch rows merged with today's speed rows.
    unique = {e["event_id"]: e for e in sent}.values()
    per_page: dict[str, list[dict]] = defaultdict(list)
    for e in unique:
        per_page[e["url"].removeprefix("https://example.test")].append(e)
    ranked = sorted(per_page.items(), key=lambda kv: (-sum(x["type"] == "pageview" for x in kv[1]), kv[0]))
    r = api.get(f"{serving_url}/api/v1/sites/{site}/breakdown", timeout=30, params={
        "dimension": "page", "metrics": "pageviews,events,visitors", "limit": 2,
        "from": yesterday.date().isoformat(), "to": today.date().isoformat()})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["final"] is False  # today is not final yet
    assert got["rows"] == [{"value": page, "pageviews": sum(x["type"] == "pageview" for x in evs), "events": len(evs),
                            "visitors": len({x.get("visitor_id") or cookieless for x in evs})}
                           for page, evs in ranked[:2]]
    rest = [x for _, evs in ranked[2:] for x in evs]
    assert got["other"] == {"value": "(other)", "values": len(ranked) - 2,
                            "pageviews": sum(x["type"] == "pageview" for x in rest), "events": len(rest),
                            "visitors": len({x.get("visitor_id") or cookieless for x in rest})}

    # Channels: every event in one; the former name answers the same, marked as replaced.
    by_channel = {}
    for dimension in ("channel", "referrer_source"):
        r = api.get(f"{serving_url}/api/v1/sites/{site}/breakdown", timeout=30, params={
            "dimension": dimension, "metrics": "events", "from": yesterday.date().isoformat(),
            "to": today.date().isoformat()})
        assert r.status_code == 200, r.text
        by_channel[dimension] = r.json()
    assert sum(row["events"] for row in by_channel["channel"]["rows"]) == len(unique)
    alias = by_channel["referrer_source"]
    assert "replaced by 'channel'" in alias.pop("deprecated") and alias == by_channel["channel"]

    # The invalid event was kept, with its reason, in `events.invalid`.
    (kept,) = invalid_records(stack, site)
    assert kept["event"] == invalid and kept["reason"] == "schema_violation"
    assert kept["errors"] == ["/: 'ts' is a required property"]


def invalid_records(settings, site: str) -> list[dict]:
    reader = TopicReader(settings, settings.kafka.topic_invalid).seek_to_beginning()
    try:
        return [json.loads(m.value) for m in reader.read_to_end() if site.encode() in m.value]
    finally:
        reader.close()


def test_invalid_event_is_kept_with_its_reason(stack, collector_url, new_site):
    site = new_site("inv")
    bad = {"event_id": "not-a-uuid", "type": "Page View!", "ts": "yesterday", "url": ""}
    r = requests.post(f"{collector_url}/api/collect", json={"site": site, "events": [bad]}, timeout=30)
    assert r.status_code == 400
    errors = r.json()["rejected"][0]["errors"]
    assert {e.split(":")[0] for e in errors} == {"/event_id", "/type", "/ts", "/url"}

    found = invalid_records(stack, site)
    assert len(found) == 1
    assert found[0]["reason"] == "schema_violation" and found[0]["event"] == bad
    assert found[0]["errors"] == errors


def test_unknown_site_is_rejected(stack, collector_url):
    e = ev(datetime.now(UTC), "v1")
    r = requests.post(f"{collector_url}/api/collect", json={"site": "no-such-site", "events": [e]}, timeout=30)
    assert r.status_code == 400 and "unknown site" in r.json()["error"]


def test_report_rejects_bad_parameters(serving_url, api, new_site):
    site = new_site("rep")
    for params, needle in [({"granularity": "week"}, "granularity"), ({"metrics": "revenue"}, "revenue"),
                           ({"from": "yesterday"}, "from"), ({"from": "2026-01-01", "to": "2026-12-31",
                                                              "granularity": "minute"}, "at most")]:
        r = api.get(f"{serving_url}/api/v1/sites/{site}/report", params=params, timeout=30)
        assert r.status_code == 400 and needle in r.json()["error"], (params, r.text)
    assert api.get(f"{serving_url}/api/v1/sites/nope/report", timeout=30).status_code == 404

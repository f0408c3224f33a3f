"""Filtered and compared reports on the real stack, against an independent count of the
same events: the batch job computes two days' views from a master dataset, and the API
answers from those views (one condition) or from the master dataset on demand (several
conditions, a breakdown filtered on another dimension)."""
from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from batch_layer.job import run_day
from infra.master import append_events
from speed_layer.queries import archive_frame
from tools.synthetic import archived_event
from views.goals import Goal

pytestmark = pytest.mark.stack
UTC = timezone.utc
TZ = "Europe/Paris"
DAYS = (date(2026, 9, 14), date(2026, 9, 15))
PATHS = ["/", "/pricing", "/blog/a", "/blog/b", "/docs"]
COUNTRIES = ["FR", "DE", "US", None]


def _events(site: str) -> list[dict]:
    rng = random.Random(20260914)
    zone = ZoneInfo(TZ)
    start = datetime.combine(DAYS[0], datetime.min.time(), tzinfo=zone)
    events = []
    for _ in range(700):
        ts = start + timedelta(seconds=rng.randrange(2 * 86400))
        kind = rng.choice(["pageview"] * 4 + ["click", "custom"])
        props = {"element": rng.choice(["cta", "nav"])} if kind == "click" else None
        events.append(archived_event(site, ts, f"v{rng.randrange(80)}", kind, rng.choice(PATHS), props=props,
                                     country=rng.choice(COUNTRIES), device=rng.choice(["desktop", "mobile"]),
                                     channel="Direct", source="Direct"))
    events += [dict(e) for e in rng.sample(events, 20)]  # retried deliveries: counted once
    # Names a spreadsheet would take for formulas: exported as text.
    for name in ('=HYPERLINK("https://evil.example","x")', "+1+1", "-2", "@SUM(A1)", "\tx"):
        e = archived_event(site, start + timedelta(hours=30), "v1", "custom", "/")
        events.append({**e, "name": name})
    return events


def _value(e: dict, dimension: str) -> str | None:
    if dimension == "page":
        return e["path"]
    if dimension in ("country", "device"):
        return e.get(dimension) or "(none)"
    if dimension == "element":
        return (e["props"] or {}).get("element") if e["type"] == "click" else None
    raise AssertionError(dimension)


def _passes(e: dict, conditions: list[tuple[str, str, str]]) -> bool:
    for dimension, op, value in conditions:
        v = _value(e, dimension)
        if v is None:
            return False
        ok = {"==": v == value, "!=": v != value, "=@": value in v, "!@": value not in v}[op]
        if not ok:
            return False
    return True


def _count(events: list[dict]) -> dict[str, int]:
    return {"pageviews": sum(e["type"] == "pageview" for e in events), "events": len(events),
            "visitors": len({e["visitor_id"] for e in events}), "clicks": sum(e["type"] == "click" for e in events)}


def _hour(e: dict) -> str:
    local = datetime.fromtimestamp(e["ts"] / 1000, UTC).astimezone(ZoneInfo(TZ))
    return local.replace(minute=0, second=0, microsecond=0).isoformat()


def _expected_series(events: list[dict], conditions: list[tuple[str, str, str]]) -> tuple[dict, dict]:
    kept = [e for e in {e["event_id"]: e for e in events}.values() if _passes(e, conditions)]
    by_hour: dict[str, list[dict]] = defaultdict(list)
    for e in kept:
        by_hour[_hour(e)].append(e)
    return {h: _count(evs) for h, evs in by_hour.items()}, _count(kept)


@pytest.fixture(scope="module")
def world(spark, cassandra, stack, registry, tmp_path_factory):
    site = f"filt-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["x.test"], TZ)
    registry.add_goal(Goal(site, "Blog", "page", "/blog/**"))
    events = _events(site)
    master = tmp_path_factory.mktemp("filtered") / "master"
    raw = spark.createDataFrame([(json.dumps(e),) for e in events], "value STRING")
    append_events(archive_frame(raw), master)
    for day in DAYS:
        run_day(spark, cassandra, stack.cassandra.keyspace, str(master), day, {site: TZ})
    return {"site": site, "events": events, "master": master}


@pytest.fixture(scope="module")
def client(serving_app, world):
    return serving_app(paths={"master_dir": world["master"]})


def _get(client, path: str, **params) -> dict:
    r = client.get(path, query_string=params)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


METRICS = "pageviews,events,visitors,clicks"


@pytest.mark.parametrize("filters,conditions,source", [
    ("country==FR", [("country", "==", "FR")], "views"),
    ("country!=FR", [("country", "!=", "FR")], "views"),
    ("page=@blog", [("page", "=@", "blog")], "views"),
    ("page!@blog", [("page", "!@", "blog")], "views"),
    ("country==FR;device==mobile", [("country", "==", "FR"), ("device", "==", "mobile")], "archive"),
    ("page=@blog;country!=US;element==cta", [("page", "=@", "blog"), ("country", "!=", "US"),
                                              ("element", "==", "cta")], "archive"),
])
def test_filtered_report_equals_an_independent_count(client, world, filters, conditions, source):
    got = _get(client, f"/api/v1/sites/{world['site']}/report", metrics=METRICS, granularity="hour",
               **{"from": DAYS[0].isoformat(), "to": DAYS[1].isoformat(), "filters": filters})
    by_hour, totals = _expected_series(world["events"], conditions)
    assert got["computed_from"] == source and got["filters"] == filters.split(";")
    assert all(b["final"] for b in got["buckets"]) and len(got["buckets"]) == 48
    empty = {"pageviews": 0, "events": 0, "visitors": 0, "clicks": 0}
    assert {b["start"]: {m: b[m] for m in empty} for b in got["buckets"]} == \
        {b["start"]: by_hour.get(b["start"], empty) for b in got["buckets"]}
    assert got["totals"] == totals
    assert sum(by_hour[h]["events"] for h in by_hour) > 10  # not a vacuous filter


def test_session_measures_are_unavailable_under_an_event_filter(client, world):
    got = _get(client, f"/api/v1/sites/{world['site']}/report", metrics="pageviews,bounce_rate", granularity="day",
               **{"from": DAYS[0].isoformat(), "to": DAYS[1].isoformat(), "filters": "country==FR"})
    assert got["totals"]["bounce_rate"] is None and "bounce_rate" in got["unavailable"]
    assert got["totals"]["pageviews"] > 0


@pytest.mark.parametrize("dimension,filters,conditions,source", [
    ("page", "device==mobile", [("device", "==", "mobile")], "archive"),
    ("page", "country==FR;device!=mobile", [("country", "==", "FR"), ("device", "!=", "mobile")], "archive"),
    ("country", "country!=US", [("country", "!=", "US")], "views"),
])
def test_filtered_breakdown_equals_an_independent_count(client, world, dimension, filters, conditions, source):
    got = _get(client, f"/api/v1/sites/{world['site']}/breakdown", dimension=dimension, metrics=METRICS, limit=2,
               **{"from": DAYS[0].isoformat(), "to": DAYS[1].isoformat(), "filters": filters})
    kept = [e for e in {e["event_id"]: e for e in world["events"]}.values() if _passes(e, conditions)]
    by_value: dict[str, list[dict]] = defaultdict(list)
    for e in kept:
        by_value[_value(e, dimension)].append(e)
    ranked = sorted(by_value.items(), key=lambda kv: (-_count(kv[1])["pageviews"], kv[0]))
    assert got["computed_from"] == source and got["final"] is True
    assert got["rows"] == [{"value": v, **_count(evs)} for v, evs in ranked[:2]]
    rest = [e for _, evs in ranked[2:] for e in evs]
    assert got["other"] == {"value": "(other)", "values": len(ranked) - 2, **_count(rest)}


def test_goal_breakdown_under_a_filter(client, world):
    got = _get(client, f"/api/v1/sites/{world['site']}/breakdown", dimension="goal",
               metrics="conversions,visitors,conversion_rate", filters="country==DE",
               **{"from": DAYS[0].isoformat(), "to": DAYS[1].isoformat()})
    kept = [e for e in {e["event_id"]: e for e in world["events"]}.values() if _passes(e, [("country", "==", "DE")])]
    blog = [e for e in kept if e["type"] == "pageview" and e["path"].startswith("/blog/")]
    converted, everyone = len({e["visitor_id"] for e in blog}), len({e["visitor_id"] for e in kept})
    assert got["computed_from"] == "archive"
    assert got["rows"] == [{"value": "Blog", "conversions": len(blog), "visitors": converted,
                            "conversion_rate": round(converted / everyone, 4)}]


def test_comparison_with_the_previous_period(client, world):
    got = _get(client, f"/api/v1/sites/{world['site']}/report", metrics="pageviews,visitors", granularity="hour",
               compare="previous_period", filters="device==mobile",
               **{"from": DAYS[1].isoformat(), "to": DAYS[1].isoformat()})
    unique = {e["event_id"]: e for e in world["events"]}.values()

    def day_of(e: dict) -> date:
        return datetime.fromtimestamp(e["ts"] / 1000, UTC).astimezone(ZoneInfo(TZ)).date()

    def totals(day: date) -> dict:
        c = _count([e for e in unique if day_of(e) == day and e.get("device") == "mobile"])
        return {"pageviews": c["pageviews"], "visitors": c["visitors"]}

    now, before = totals(DAYS[1]), totals(DAYS[0])
    comparison = got["comparison"]
    assert got["totals"] == now and comparison["totals"] == before
    assert comparison["from"] == "2026-09-14T00:00:00+02:00" and comparison["to"] == "2026-09-15T00:00:00+02:00"
    assert len(comparison["buckets"]) == len(got["buckets"]) == 24
    assert comparison["change"]["pageviews"] == round((now["pageviews"] - before["pageviews"]) / before["pageviews"], 4)


def test_filters_refused_with_a_reason(client, world):
    site = world["site"]
    for params, needle in [({"filters": "planet==Mars"}, "unknown dimension"), ({"filters": "country"}, "no operator"),
                           ({"filters": "goal!=Blog"}, "takes '=='"),
                           ({"filters": "entry_page==/;country==FR"}, "only filter"),
                           ({"filters": "country==FR", "granularity": "minute"}, "minute buckets")]:
        r = client.get(f"/api/v1/sites/{site}/report", query_string={"from": DAYS[0].isoformat(), **params})
        assert r.status_code == 400 and needle in r.get_json()["error"], (params, r.get_json())
        assert r.get_json().get("parameter") in ("filters", "granularity")


def test_on_demand_answers_are_bounded(serving_app, world):
    client = serving_app(paths={"master_dir": world["master"]}, serving={"archive_max_events": 100})
    r = client.get(f"/api/v1/sites/{world['site']}/report",
                   query_string={"from": DAYS[0].isoformat(), "filters": "country==FR;device==mobile"})
    assert r.status_code == 400 and "more than the 100" in r.get_json()["error"]


def test_exports_are_the_reports_as_tables(client, world):
    site, span = world["site"], {"from": DAYS[0].isoformat(), "to": DAYS[1].isoformat()}
    report = _get(client, f"/api/v1/sites/{site}/report", metrics="pageviews,visitors", granularity="day",
                  filters="device==mobile", compare="previous_period", **span)
    r = client.get(f"/api/v1/sites/{site}/export/report", query_string={
        "metrics": "pageviews,visitors", "granularity": "day", "filters": "device==mobile",
        "compare": "previous_period", **span})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert f'filename="{site}-report-2026-09-14-2026-09-16.csv"' in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["start", "final", "pageviews", "visitors", "previous_start", "previous_pageviews",
                       "previous_visitors"]
    assert [[x[0], x[2], x[3]] for x in rows[1:]] == \
        [[b["start"], str(b["pageviews"]), str(b["visitors"])] for b in report["buckets"]]
    assert [x[5] for x in rows[1:]] == [str(b["pageviews"]) for b in report["comparison"]["buckets"]]

    names = _get(client, f"/api/v1/sites/{site}/breakdown", dimension="event_name", metrics="events", limit=20,
                 **span)["rows"]
    r = client.get(f"/api/v1/sites/{site}/export/breakdown", query_string={
        "dimension": "event_name", "metrics": "events", "limit": 20, **span})
    exported = {row[0]: row[1] for row in csv.reader(io.StringIO(r.get_data(as_text=True)))}
    assert exported.pop("event_name") == "events"
    for row in names:  # formulas neutralized: the cell begins with a quote
        cell = "'" + row["value"] if row["value"][0] in "=+-@\t" else row["value"]
        assert exported[cell] == str(row["events"])
    assert "'=HYPERLINK(\"https://evil.example\",\"x\")" in exported and "'-2" in exported

    r = client.get(f"/api/v1/sites/{site}/export/breakdown", query_string={
        "dimension": "event_name", "metrics": "events", "limit": 20, "format": "xlsx", **span})
    assert r.status_code == 200 and r.headers["Content-Disposition"].endswith('.xlsx"')
    sheet = openpyxl.load_workbook(io.BytesIO(r.get_data())).active
    cells = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}
    evil = cells['=HYPERLINK("https://evil.example","x")']
    assert evil.data_type == "n" and evil.value == 1  # the name is a string cell, its count a number
    assert sheet.cell(2, 1).data_type == "s" and all(c.data_type == "s" for c in sheet["A"][1:])

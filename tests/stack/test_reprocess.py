"""The reprocess DAG, run by `dag.test()` with spark-submit on the real stack: exactly the
site-days asked for are recomputed and equal an independent count of the events; a dry run
writes nothing and reports stored and recomputed totals; a second run changes nothing."""
from __future__ import annotations

import json
import os
import random
import uuid
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from infra.master import append_events
from speed_layer.queries import archive_frame
from store.reprocessing import ReprocessReports
from tools.synthetic import archived_event

REPO = Path(__file__).resolve().parents[2]
TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=n) for n in (5, 4, 3)]
ZONES = {"utc": "UTC", "kolkata": "Asia/Kolkata"}
MEASURES = ("pageviews", "events", "visitors", "clicks", "impressions")
VALUE_COLUMNS = ("pageviews", "events", "visitors", "visitors_sketch", "clicks", "impressions", "sessions", "bounces",
                 "duration_ms", "session_pageviews")


def local_day(ts_ms: int, tz: str) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(ZoneInfo(tz)).date()


def reference(events: list[dict], tz: str) -> dict[date, dict[str, int]]:
    """Per local day: the day's site totals, counted here from the events themselves."""
    unique = {e["event_id"]: e for e in events}.values()
    out: dict[date, dict[str, object]] = defaultdict(lambda: {m: 0 for m in MEASURES} | {"v": set()})
    for e in unique:
        day = out[local_day(e["ts"], tz)]
        day["events"] += 1
        day["v"].add(e["visitor_id"])
        for measure, kind in (("pageviews", "pageview"), ("clicks", "click"), ("impressions", "impression")):
            day[measure] += e["type"] == kind
    return {d: {**{m: int(v[m]) for m in MEASURES if m != "visitors"}, "visitors": len(v["v"])}
            for d, v in out.items()}


@pytest.fixture(scope="module")
def world(stack, spark, registry, tmp_path_factory):
    rng = random.Random(19)
    tag = uuid.uuid4().hex[:6]
    sites = {f"rep-{name}-{tag}": tz for name, tz in ZONES.items()}
    start = datetime.combine(DAYS[0] - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    events: dict[str, list[dict]] = {}
    for site, tz in sites.items():
        registry.add_site(site, ["x.test"], tz)
        evs = [archived_event(site, start + timedelta(seconds=rng.randrange(5 * 86400)), f"v{rng.randrange(40)}",
                              rng.choice(["pageview", "pageview", "click", "impression", "custom"]),
                              rng.choice(["/", "/a", "/b"])) for _ in range(500)]
        evs += [dict(e) for e in rng.sample(evs, 20)]  # retried deliveries
        events[site] = evs
    master = tmp_path_factory.mktemp("reprocess") / "master"
    raw = spark.createDataFrame([(json.dumps(e),) for evs in events.values() for e in evs], "value STRING")
    append_events(archive_frame(raw), master)
    return {"sites": sites, "events": events, "master": master}


@contextmanager
def master_dir(path: Path):
    saved = os.environ["PARALLAX_MASTER_DIR"]
    os.environ["PARALLAX_MASTER_DIR"] = str(path)
    try:
        yield
    finally:
        os.environ["PARALLAX_MASTER_DIR"] = saved


def reprocess(world, **conf):
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415 -- after the session's Airflow settings

    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("parallax_reprocess")
    with master_dir(world["master"]):
        run = dag.test(run_conf=conf)
    assert "success" in str(run.state).lower(), run.state
    return run


def day_totals(cassandra, ks: str, site: str, tz: str, day: date) -> dict[str, int] | None:
    start = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    row = cassandra.execute(f"SELECT {', '.join(MEASURES)} FROM {ks}.batch_views WHERE site=%s AND view_name='traffic' "
                            "AND granularity='day' AND period=%s AND bucket=%s AND dim=''",
                            (site, str(start.year), start)).one()
    # A row holding only session measures: the sessions of the day before a computed day.
    if row is None or all(getattr(row, m) is None for m in MEASURES):
        return None
    return {m: int(getattr(row, m) or 0) for m in MEASURES}


def all_rows(cassandra, ks: str, site: str) -> dict[tuple, tuple]:
    rows = cassandra.execute(f"SELECT view_name, granularity, period, bucket, dim, {', '.join(VALUE_COLUMNS)} "
                             f"FROM {ks}.batch_views WHERE site=%s ALLOW FILTERING", (site,))
    return {(r.view_name, r.granularity, r.period, r.bucket, r.dim): tuple(getattr(r, c) for c in VALUE_COLUMNS)
            for r in rows}


def hour_totals(cassandra, ks: str, site: str) -> dict[datetime, int]:
    """Events per hour bucket (rows holding only session measures left out: the sessions of
    the day before the range)."""
    return {k[3]: v[1] for k, v in all_rows(cassandra, ks, site).items()
            if k[0] == "traffic" and k[1] == "hour" and v[1] is not None}


def test_reprocess_recomputes_exactly_the_site_days_asked(world, cassandra, stack, airflow_db):
    ks = stack.cassandra.keyspace
    (a, tz_a), (b, tz_b) = world["sites"].items()
    expected = {site: reference(world["events"][site], tz) for site, tz in world["sites"].items()}

    # One site-day: only it is written.
    reprocess(world, first=DAYS[1].isoformat(), last=DAYS[1].isoformat(), sites=[a], dry_run=False)
    assert day_totals(cassandra, ks, a, tz_a, DAYS[1]) == expected[a][DAYS[1]]
    assert day_totals(cassandra, ks, a, tz_a, DAYS[0]) is None and day_totals(cassandra, ks, a, tz_a, DAYS[2]) is None
    assert all(day_totals(cassandra, ks, b, tz_b, d) is None for d in DAYS)

    # A dry run of the whole range: a report, and nothing written.
    before = {site: all_rows(cassandra, ks, site) for site in world["sites"]}
    run = reprocess(world, first=DAYS[0].isoformat(), last=DAYS[2].isoformat(), dry_run=True)
    assert {site: all_rows(cassandra, ks, site) for site in world["sites"]} == before
    report = [c for c in ReprocessReports(cassandra, ks).read(run.run_id) if c.site in world["sites"]]
    assert len(report) == 2 * len(DAYS) * 9  # both sites, every day, every measure of a day
    for c in report:
        if c.measure in MEASURES:
            assert c.recomputed == expected[c.site][c.day][c.measure], c
            assert c.stored == (expected[a][DAYS[1]][c.measure] if (c.site, c.day) == (a, DAYS[1]) else None), c
    assert not any(c.differs for c in report if (c.site, c.day) == (a, DAYS[1]))

    # The whole range, for every site; then again: the same rows.
    reprocess(world, first=DAYS[0].isoformat(), last=DAYS[2].isoformat())
    for site, tz in world["sites"].items():
        for day in DAYS:
            assert day_totals(cassandra, ks, site, tz, day) == expected[site][day], (site, day)
        hours: dict[datetime, int] = defaultdict(int)
        for e in {e["event_id"]: e for e in world["events"][site]}.values():
            if local_day(e["ts"], tz) in DAYS:  # an hour of the site's clock (Kolkata's start at :30 UTC)
                local = datetime.fromtimestamp(e["ts"] / 1000, UTC).astimezone(ZoneInfo(tz))
                hours[local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)] += 1
        stored_hours = {h.replace(tzinfo=UTC): n for h, n in hour_totals(cassandra, ks, site).items()}
        assert stored_hours == dict(hours), site
        boundary = cassandra.execute(f"SELECT boundary FROM {ks}.batch_boundary WHERE site=%s", (site,)).one().boundary
        assert boundary.replace(tzinfo=UTC) == datetime.combine(DAYS[2] + timedelta(days=1), datetime.min.time(),
                                                                tzinfo=ZoneInfo(tz)).astimezone(UTC)
    # Again, the middle day (its sessions reach into the day before): every row as it was.
    first = {site: all_rows(cassandra, ks, site) for site in world["sites"]}
    reprocess(world, first=DAYS[1].isoformat(), last=DAYS[1].isoformat())
    assert {site: all_rows(cassandra, ks, site) for site in world["sites"]} == first


def test_a_bad_range_or_site_fails_before_spark_with_its_reason(world, airflow_db):
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415

    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("parallax_reprocess")
    with master_dir(world["master"]):
        run = dag.test(run_conf={"first": DAYS[2].isoformat(), "last": DAYS[0].isoformat()})
    assert "failed" in str(run.state).lower()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert "failed" in states["plan"] and "success" not in states["recompute"]

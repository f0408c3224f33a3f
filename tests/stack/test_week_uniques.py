"""A 7-day report's unique visitors is the union of the days' sketches: it matches the
exact distinct count over the week within the sketch's error bound, and is far from the
sum of the daily uniques (the same visitors come back on several days)."""
from __future__ import annotations

import json
import math
import random
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from batch_layer.job import run_day
from infra.master import append_events
from serving_layer.reports import traffic_report
from serving_layer.stores import ServingStore
from speed_layer.queries import archive_frame
from store.archive import Archive
from tools.synthetic import archived_event

pytestmark = pytest.mark.stack
UTC = timezone.utc
TZ = "America/New_York"
FIRST = date(2026, 10, 5)
HLL_BOUND = 3 * 1.04 / math.sqrt(4096)  # three standard errors of an lg_k 12 sketch


def test_week_visitors_are_a_union_not_a_sum(spark, cassandra, stack, registry, tmp_path):
    rng = random.Random(7)
    site = f"week-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["x.test"], TZ)
    zone = ZoneInfo(TZ)
    # 3,000 regulars, each seen on 2-5 of the days, and some one-off visitors.
    events = []
    for v in range(3000):
        for day in rng.sample(range(7), rng.randint(2, 5)):
            t = datetime(FIRST.year, FIRST.month, FIRST.day, 8, tzinfo=zone) + timedelta(days=day,
                                                                                    minutes=rng.randrange(600))
            events.append(archived_event(site, t, f"r{v}"))
    for v in range(500):
        t = datetime(FIRST.year, FIRST.month, FIRST.day, 8, tzinfo=zone) + timedelta(days=rng.randrange(7))
        events.append(archived_event(site, t, f"once{v}"))
    raw = spark.createDataFrame([(json.dumps(e),) for e in events], "value STRING")
    master = str(tmp_path / "master")
    append_events(archive_frame(raw), master)
    for i in range(7):
        run_day(spark, cassandra, stack.cassandra.keyspace, master, FIRST + timedelta(days=i), {site: TZ})

    store = ServingStore(cassandra, stack.cassandra.keyspace, Archive(Path(master)), 10_000_000)
    start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=zone).astimezone(UTC)
    week = traffic_report(store, site, ["visitors", "pageviews"], start, start + timedelta(days=7), "day", TZ)
    assert all(b["final"] for b in week["buckets"]) and len(week["buckets"]) == 7

    exact = len({e["visitor_id"] for e in events})
    daily_sum = sum(b["visitors"] for b in week["buckets"])
    assert abs(week["totals"]["visitors"] - exact) <= HLL_BOUND * exact
    assert daily_sum > 2 * exact  # what a sum of daily counts would have claimed
    assert week["totals"]["pageviews"] == len(events)
    # Each day on its own is exact in the batch layer.
    for i, b in enumerate(week["buckets"]):
        day = FIRST + timedelta(days=i)
        in_day = {e["visitor_id"] for e in events
                  if datetime.fromtimestamp(e["ts"] / 1000, UTC).astimezone(zone).date() == day}
        assert b["visitors"] == len(in_day)

"""The drift record: the speed layer's minutes of a day against the batch layer's."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from batch_layer.drift import VISITORS, compare

T0 = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)


def _by_measure(drifts):
    return {d.measure: d for d in drifts}


def test_equal_minutes_have_no_drift():
    rows = {T0: {"pageviews": 3, "events": 5, "visitors": 2}, T0 + timedelta(minutes=1): {"pageviews": 1}}
    drift = _by_measure(compare(rows, rows, 2, 2))
    assert drift["pageviews"].speed == drift["pageviews"].batch == 4
    assert all(d.difference == 0 and d.minutes_differing == 0 for d in drift.values())
    assert drift["sessions"].speed == 0 and drift["sessions"].relative is None


def test_a_dropped_event_and_a_missing_minute_show():
    speed = {T0: {"pageviews": 3, "events": 4, "visitors": 2}}
    batch = {T0: {"pageviews": 3, "events": 5, "visitors": 2},
             T0 + timedelta(minutes=7): {"pageviews": 2, "events": 2, "visitors": 1}}
    drift = _by_measure(compare(speed, batch, speed_visitors=2, batch_visitors=3))
    assert (drift["pageviews"].difference, drift["pageviews"].minutes_differing) == (-2, 1)
    assert (drift["events"].difference, drift["events"].minutes_differing) == (-3, 2)
    assert drift["events"].relative == pytest.approx(-3 / 7)
    assert (drift[VISITORS].speed, drift[VISITORS].batch, drift[VISITORS].minutes_differing) == (2, 3, 1)
    assert (drift["pageviews"].speed_minutes, drift["pageviews"].batch_minutes) == (1, 2)


def _sketch(visitors: list[str]) -> bytes:
    from datasketches import hll_sketch

    from views.sketches import HLL_LG_K

    sketch = hll_sketch(HLL_LG_K)
    for v in visitors:
        sketch.update(v)
    return sketch.serialize_compact()


@pytest.mark.stack
def test_recorded_and_served_for_the_sites_local_day(cassandra, stack, serving_url):
    """Rows written as both layers write them, for a site in Kolkata (UTC+5:30): only the
    minutes of its local day count, the record lands in Cassandra and the API serves it."""
    import requests

    from batch_layer.drift import record_drift
    from infra.sites import add_site
    from views.store import BATCH_TABLE, SPEED_TABLE, upsert, upsert_cql, view_params

    site, tz, day = f"drift-{uuid.uuid4().hex[:8]}", "Asia/Kolkata", date(2026, 3, 4)
    add_site(cassandra, stack.cassandra.keyspace, site, ["example.test"], tz)
    start = datetime(2026, 3, 3, 18, 30, tzinfo=timezone.utc)  # local midnight
    now = datetime.now(timezone.utc)

    def minute(at: datetime, pageviews: int, visitors: list[str]) -> dict:
        return {"site": site, "bucket": at, "pageviews": pageviews, "events": pageviews, "visitors": len(visitors),
                "visitors_sketch": _sketch(visitors), "clicks": 0, "impressions": 0}

    outside = minute(start - timedelta(minutes=1), 9, ["x"])  # the local day before: not compared
    speed = [outside, minute(start, 2, ["a", "b"]), minute(start + timedelta(hours=20), 1, ["a"])]
    batch = [outside, minute(start, 2, ["a", "b"]), minute(start + timedelta(hours=20), 2, ["a", "c"])]
    day_row = {**minute(start, 4, ["a", "b", "c"]), "visitors": 3}
    for table, rows in ((SPEED_TABLE, speed), (BATCH_TABLE, batch)):
        stmt = cassandra.prepare(upsert_cql(stack.cassandra.keyspace, table, "event"))
        upsert(cassandra, stmt, [view_params(r, "minute", now, "event") for r in rows])
    upsert(cassandra, cassandra.prepare(upsert_cql(stack.cassandra.keyspace, BATCH_TABLE, "event")),
           [view_params(day_row, "day", now, "event")])

    drift = _by_measure(record_drift(cassandra, stack.cassandra.keyspace, day, {site: tz})[site])
    assert (drift["pageviews"].speed, drift["pageviews"].batch, drift["pageviews"].minutes_differing) == (3, 4, 1)
    assert (drift[VISITORS].speed, drift[VISITORS].batch) == (2, 3)  # a union of a, b and a: not 3

    body = requests.get(f"{serving_url}/api/v1/sites/{site}/drift", params={"day": day.isoformat()}, timeout=10).json()
    served = {m["measure"]: m for m in body["measures"]}
    assert body["computed"] and served["pageviews"]["difference"] == -1
    assert served["pageviews"]["relative"] == pytest.approx(-0.25)
    assert served["events"]["minutes_differing"] == 1 and served["sessions"]["speed"] == 0

    empty = requests.get(f"{serving_url}/api/v1/sites/{site}/drift", params={"day": "2026-03-05"}, timeout=10).json()
    assert empty["computed"] is False and empty["measures"] == []
    bad = requests.get(f"{serving_url}/api/v1/sites/{site}/drift", params={"day": "yesterday"}, timeout=10)
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["error"]

"""The drift record on the real stack: written as the batch layer writes it, served by the API."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from batch_layer.drift import VISITORS, record_drift
from store.views import BATCH_TABLE, SPEED_TABLE, ViewWrites
from tests.helpers import sketch


def _by_measure(drifts):
    return {d.measure: d for d in drifts}


def test_recorded_and_served_for_the_sites_local_day(cassandra, stack, registry, serving_url, api):
    """Rows written as both layers write them, for a site in Kolkata (UTC+5:30): only the
    minutes of its local day count, the record lands in Cassandra and the API serves it."""
    site, tz, day = f"drift-{uuid.uuid4().hex[:8]}", "Asia/Kolkata", date(2026, 3, 4)
    registry.add_site(site, ["example.test"], tz)
    start = datetime(2026, 3, 3, 18, 30, tzinfo=timezone.utc)  # local midnight
    now = datetime.now(timezone.utc)

    def minute(at: datetime, pageviews: int, visitors: list[str]) -> dict:
        return {"site": site, "bucket": at, "pageviews": pageviews, "events": pageviews, "visitors": len(visitors),
                "visitors_sketch": sketch(visitors), "clicks": 0, "impressions": 0}

    outside = minute(start - timedelta(minutes=1), 9, ["x"])  # the local day before: not compared
    speed = [outside, minute(start, 2, ["a", "b"]), minute(start + timedelta(hours=20), 1, ["a"])]
    batch = [outside, minute(start, 2, ["a", "b"]), minute(start + timedelta(hours=20), 2, ["a", "c"])]
    day_row = {**minute(start, 4, ["a", "b", "c"]), "visitors": 3}
    writes = ViewWrites(cassandra, stack.cassandra.keyspace)
    for table, rows in ((SPEED_TABLE, speed), (BATCH_TABLE, batch)):
        writes.write(table, "event", "minute", rows, now)
    writes.write(BATCH_TABLE, "event", "day", [day_row], now)

    drift = _by_measure(record_drift(cassandra, stack.cassandra.keyspace, day, {site: tz})[site])
    assert (drift["pageviews"].speed, drift["pageviews"].batch, drift["pageviews"].minutes_differing) == (3, 4, 1)
    assert (drift[VISITORS].speed, drift[VISITORS].batch) == (2, 3)  # a union of a, b and a: not 3

    body = api.get(f"{serving_url}/api/v1/sites/{site}/drift", params={"day": day.isoformat()}, timeout=10).json()
    served = {m["measure"]: m for m in body["measures"]}
    assert body["computed"] and served["pageviews"]["difference"] == -1
    assert served["pageviews"]["relative"] == pytest.approx(-0.25)
    assert served["events"]["minutes_differing"] == 1 and served["sessions"]["speed"] == 0

    empty = api.get(f"{serving_url}/api/v1/sites/{site}/drift", params={"day": "2026-03-05"}, timeout=10).json()
    assert empty["computed"] is False and empty["measures"] == []
    bad = api.get(f"{serving_url}/api/v1/sites/{site}/drift", params={"day": "yesterday"}, timeout=10)
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["error"]

"""The serving merge on the real Cassandra store, through the real report API: which
buckets are final, and how speed minutes merge into hours (sketch union, not a sum)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from store.views import ViewWrites
from tests.helpers import sketch

pytestmark = pytest.mark.stack
UTC = timezone.utc


@pytest.fixture
def client(serving_app):
    # The test writes boundaries and reads them back at once: no cached site state.
    return serving_app(serving={"meta_ttl_s": 0})


def write(cassandra, keyspace: str, table: str, site: str, granularity: str, bucket: datetime, pageviews: int,
          visitors: list[str]) -> None:
    row = {"site": site, "bucket": bucket, "pageviews": pageviews, "events": pageviews, "clicks": 0, "impressions": 0,
           "visitors": len(set(visitors)),
           "visitors_sketch": sketch(visitors)}
    ViewWrites(cassandra, keyspace).write(table, "event", granularity, [row], datetime.now(UTC))


def set_boundary(cassandra, keyspace: str, site: str, boundary: datetime) -> None:
    cassandra.execute(f"INSERT INTO {keyspace}.batch_boundary (site, boundary, updated_at) VALUES (%s, %s, %s)",
                      (site, boundary, datetime.now(UTC)))


def test_final_buckets_and_sketch_merge(client, cassandra, stack, registry, new_site):
    site = new_site("merge")
    registry.add_site(site, ["example.test"], "Europe/Paris")
    ks = stack.cassandra.keyspace
    nov10 = datetime(2026, 11, 9, 23, tzinfo=UTC)  # 2026-11-10 00:00 in Paris (CET, +01:00)
    nov11 = nov10 + timedelta(days=1)
    write(cassandra, ks, "batch_views", site, "day", nov10, 10, ["a", "b"])
    write(cassandra, ks, "speed_views", site, "minute", nov10 + timedelta(minutes=30), 999, ["x"])  # shadowed by batch
    # Two speed minutes in Paris's 00:00 hour of Nov 11 with an overlapping visitor.
    write(cassandra, ks, "speed_views", site, "minute", nov11 + timedelta(minutes=5), 3, ["a", "c"])
    write(cassandra, ks, "speed_views", site, "minute", nov11 + timedelta(minutes=40), 2, ["c", "d"])

    set_boundary(cassandra, ks, site, nov11)
    days = client.get(f"/api/v1/sites/{site}/report?from=2026-11-10&to=2026-11-11&granularity=day").get_json()
    assert days["timezone"] == "Europe/Paris" and days["boundary"] == "2026-11-11T00:00:00+01:00"
    assert days["buckets"] == [
        {"start": "2026-11-10T00:00:00+01:00", "final": True, "pageviews": 10, "visitors": 2},
        {"start": "2026-11-11T00:00:00+01:00", "final": False, "pageviews": 5, "visitors": 3},
    ]
    assert days["totals"] == {"pageviews": 15, "visitors": 4}  # a, b, c, d: a counted once

    hours = client.get(f"/api/v1/sites/{site}/report?from=2026-11-11T00:00&to=2026-11-11T02:00&granularity=hour")
    assert [(b["pageviews"], b["visitors"], b["final"]) for b in hours.get_json()["buckets"]] == [(5, 3, False), (0, 0, False)]

    # A boundary that is not on the site's midnight (its zone changed after a batch run):
    # the day around it is not final and comes from the speed views.
    set_boundary(cassandra, ks, site, nov10 + timedelta(hours=1))
    days = client.get(f"/api/v1/sites/{site}/report?from=2026-11-10&to=2026-11-10&granularity=day").get_json()
    assert days["buckets"] == [{"start": "2026-11-10T00:00:00+01:00", "final": False, "pageviews": 999, "visitors": 1}]

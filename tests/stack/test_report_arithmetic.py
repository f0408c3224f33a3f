"""The reports' arithmetic on rows written to the real Cassandra as the layers write them:
ratios are computed after merging (never averaged), a ratio without a denominator is null,
and breakdowns refuse measures of the other kind."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from store.views import ViewWrites

pytestmark = pytest.mark.stack
UTC = timezone.utc


@pytest.fixture
def client(serving_app):
    return serving_app()


def test_ratios_are_computed_after_merging_never_averaged(client, cassandra, stack, new_site):
    site = new_site("ratio")
    t = datetime(2026, 11, 21, 10, tzinfo=UTC)
    writes, now = ViewWrites(cassandra, stack.cassandra.keyspace), datetime.now(UTC)
    sessions = [{"site": site, "bucket": t, "sessions": 1, "bounces": 1, "duration_ms": 0, "session_pageviews": 1},
                {"site": site, "bucket": t + timedelta(minutes=1), "sessions": 3, "bounces": 0, "duration_ms": 90_000,
                 "session_pageviews": 9}]
    events = [{"site": site, "bucket": b, "pageviews": 1, "events": 1, "visitors": 1, "visitors_sketch": None,
               "clicks": c, "impressions": 10} for b, c in ((t, 0), (t + timedelta(minutes=1), 2))]
    writes.write("speed_views", "session", "minute", sessions, now)
    writes.write("speed_views", "event", "minute", events, now)
    metrics = "sessions,bounce_rate,avg_duration,pages_per_session,ctr,duration"
    r = client.get(f"/api/v1/sites/{site}/report", query_string={
        "metrics": metrics, "from": "2026-11-21T10:00", "to": "2026-11-21T11:00", "granularity": "hour"})
    assert r.status_code == 200, r.get_json()
    # per-minute rates would average to 0.5 bounce rate; the hour's is 1 bounce in 4 sessions
    assert r.get_json()["buckets"] == [{"start": "2026-11-21T10:00:00+00:00", "final": False, "sessions": 4,
                                        "bounce_rate": 0.25, "avg_duration": 22.5, "pages_per_session": 2.5,
                                        "ctr": 0.1, "duration": 90.0}]
    empty = client.get(f"/api/v1/sites/{site}/report", query_string={
        "metrics": "bounce_rate", "from": "2026-11-22T10:00", "to": "2026-11-22T11:00"}).get_json()
    assert empty["totals"] == {"bounce_rate": None}  # no sessions: no rate, not 0


def test_breakdowns_refuse_measures_of_the_other_kind(client, new_site):
    site = new_site("kinds")
    for params, needle in [({"dimension": "page", "metrics": "bounce_rate"}, "do not break down by 'page'"),
                           ({"dimension": "entry_page", "metrics": "pageviews"}, "do not break down by 'entry_page'"),
                           ({"dimension": "page", "metrics": "conversion_rate"}, "unknown metric")]:
        r = client.get(f"/api/v1/sites/{site}/breakdown", query_string=params)
        assert r.status_code == 400 and needle in r.get_json()["error"] and r.get_json()["parameter"] == "metrics"

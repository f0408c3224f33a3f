"""Goals and the report arithmetic on tiny inputs: assertions on outputs (the sessions
transforms: tests/stack/test_sessions.py)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from serving_layer.reports import ReportError, breakdown_report, traffic_report
from store.views import MEASURE_COLUMNS
from views.goals import Goal, path_regex, validate_goal

UTC = timezone.utc


def test_page_goal_patterns():
    assert re.match(path_regex("/blog/*"), "/blog/post")
    assert not re.match(path_regex("/blog/*"), "/blog/2026/post")
    assert re.match(path_regex("/blog/**"), "/blog/2026/post")
    assert not re.match(path_regex("/signup"), "/signup/extra")
    assert re.match(path_regex("/a.b+(c)"), "/a.b+(c)") and not re.match(path_regex("/a.b"), "/axb")
    for bad in (Goal("s", "x", "page", "no-slash"), Goal("s", "", "event", "e"), Goal("s", "x", "visit", "/")):
        try:
            validate_goal(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")


class Row:
    def __init__(self, bucket, **values):
        self.bucket, self.dim = bucket, values.pop("dim", "")
        for c in MEASURE_COLUMNS:
            setattr(self, c, values.get(c, 0 if c != "visitors_sketch" else None))


class Store:
    """Rows kept in a dict: the reports facade's arithmetic, without Cassandra."""

    def __init__(self, speed=(), batch=(), boundary=None):
        self.speed, self.batch, self._boundary = list(speed), list(batch), boundary

    def boundary(self, site):
        return self._boundary

    def rows(self, table, site, granularity, start, end, view="traffic"):
        rows = self.speed if table == "speed_views" else self.batch
        return [r for r in rows if start <= r.bucket < end and getattr(r, "view", "traffic") == view]


def test_ratios_are_computed_after_merging_never_averaged():
    t = datetime(2026, 11, 21, 10, tzinfo=UTC)
    speed = [Row(t, sessions=1, bounces=1, duration_ms=0, session_pageviews=1, clicks=0, impressions=10),
             Row(t + timedelta(minutes=1), sessions=3, bounces=0, duration_ms=90_000, session_pageviews=9, clicks=2,
                 impressions=10)]
    report = traffic_report(Store(speed), "s", ["sessions", "bounce_rate", "avg_duration", "pages_per_session", "ctr",
                                                "duration"], t, t + timedelta(hours=1), "hour")
    # per-minute rates would average to 0.5 bounce rate; the hour's is 1 bounce in 4 sessions
    assert report["buckets"][0] == {"start": t.isoformat(), "final": False, "sessions": 4, "bounce_rate": 0.25,
                                    "avg_duration": 22.5, "pages_per_session": 2.5, "ctr": 0.1, "duration": 90.0}
    empty = traffic_report(Store(), "s", ["bounce_rate"], t, t + timedelta(hours=1), "hour")
    assert empty["totals"] == {"bounce_rate": None}  # no sessions: no rate, not 0


def test_breakdowns_refuse_measures_of_the_other_kind():
    t = datetime(2026, 11, 21, 10, tzinfo=UTC)
    with pytest.raises(ReportError, match="do not break down by 'page'"):
        breakdown_report(Store(), "s", "page", ["bounce_rate"], t, t + timedelta(hours=1))
    with pytest.raises(ReportError, match="do not break down by 'entry_page'"):
        breakdown_report(Store(), "s", "entry_page", ["pageviews"], t, t + timedelta(hours=1))
    with pytest.raises(ReportError, match="unknown metric"):
        breakdown_report(Store(), "s", "page", ["conversion_rate"], t, t + timedelta(hours=1))

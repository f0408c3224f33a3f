"""Sessions on tiny DataFrames: the gap ends a session, and a session counts in the bucket
where it starts, with its whole length."""
from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import functions as F
from pyspark.sql import types as T

from views.transforms import session_rows, session_views, with_event_time

UTC = timezone.utc
SCHEMA = T.StructType([T.StructField(n, t) for n, t in (
    ("event_id", T.StringType()), ("site", T.StringType()), ("type", T.StringType()), ("ts", T.LongType()),
    ("visitor_id", T.StringType()), ("path", T.StringType()))])


def ms(dt: str) -> int:
    return int(datetime.fromisoformat(dt + "+00:00").timestamp() * 1000)


def test_sessions_end_after_the_gap_and_count_where_they_start(spark):
    rows = [
        # v1: one session across an hour edge and Paris midnight (23:00 UTC in winter)
        ("a1", "s", "pageview", ms("2026-11-21T22:50:00"), "v1", "/home"),
        ("a2", "s", "click", ms("2026-11-21T23:05:00"), "v1", "/home"),
        ("a3", "s", "pageview", ms("2026-11-21T23:20:00"), "v1", "/pricing"),
        # exactly 30 minutes later: still the same session; a second more ends it
        ("a4", "s", "pageview", ms("2026-11-21T23:50:00"), "v1", "/blog"),
        ("a5", "s", "pageview", ms("2026-11-22T00:20:01"), "v1", "/blog"),
        # v2: a bounce, plus a same-instant tie broken by event id for entry and exit
        ("b2", "s", "pageview", ms("2026-11-21T10:00:00"), "v2", "/b"),
        ("b1", "s", "pageview", ms("2026-11-21T10:00:00"), "v2", "/a"),
        # v3: a session without a pageview
        ("c1", "s", "custom", ms("2026-11-21T10:00:30"), "v3", None),
        # the same visitor id on another site is another session
        ("d1", "t", "pageview", ms("2026-11-21T22:55:00"), "v1", "/"),
    ]
    events = with_event_time(spark.createDataFrame(rows, SCHEMA)).withColumn("timezone", F.lit("Europe/Paris"))
    sessions = {(r.site, r.visitor_id, r.start.replace(tzinfo=UTC)): r.asDict()
                for r in session_rows(events, "30 minutes").collect()}
    first = sessions[("s", "v1", datetime(2026, 11, 21, 22, 50, tzinfo=UTC))]
    assert (first["duration_ms"], first["pageviews"], first["events"]) == (60 * 60_000, 3, 4)
    assert (first["entry_page"], first["exit_page"]) == ("/home", "/blog")
    second = sessions[("s", "v1", datetime(2026, 11, 22, 0, 20, 1, tzinfo=UTC))]
    assert (second["pageviews"], second["entry_page"], second["duration_ms"]) == (1, "/blog", 0)
    tie = sessions[("s", "v2", datetime(2026, 11, 21, 10, 0, tzinfo=UTC))]
    assert (tie["pageviews"], tie["entry_page"], tie["exit_page"]) == (2, "/a", "/b")
    assert sessions[("s", "v3", datetime(2026, 11, 21, 10, 0, 30, tzinfo=UTC))]["entry_page"] == "(none)"
    assert len(sessions) == 5

    days = {(r.site, r.view_name, r.dim, r.bucket.replace(tzinfo=UTC)): (r.sessions, r.bounces, r.duration_ms,
                                                                         r.session_pageviews)
            for r in session_views(session_rows(events, "30 minutes"), "day").collect()}
    nov21, nov22 = datetime(2026, 11, 20, 23, tzinfo=UTC), datetime(2026, 11, 21, 23, tzinfo=UTC)  # Paris days
    # The session crossing Paris midnight counts on the day it started, with its whole duration.
    assert days[("s", "traffic", "", nov21)] == (3, 0, 60 * 60_000, 5)
    assert days[("s", "traffic", "", nov22)] == (1, 1, 0, 1)
    assert days[("s", "entry_page", "/home", nov21)] == (1, 0, 60 * 60_000, 3)
    assert days[("s", "exit_page", "/blog", nov21)] == (1, 0, 60 * 60_000, 3)
    assert days[("s", "exit_page", "(none)", nov21)] == (1, 0, 0, 0)
    hours = {(r.site, r.view_name, r.bucket.replace(tzinfo=UTC)): r.sessions
             for r in session_views(session_rows(events, "30 minutes"), "hour").collect() if r.view_name == "traffic"}
    assert hours[("s", "traffic", datetime(2026, 11, 21, 22, tzinfo=UTC))] == 1  # not in 23:00 as well

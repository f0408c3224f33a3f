"""The shared transforms on tiny DataFrames with explicit schemas: assertions on outputs."""
from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from views.goals import Goal
from views.sketches import union_estimate
from views.transforms import dedupe_events, parse_events, traffic, views, with_acquisition, with_event_time

EVENT_SCHEMA = T.StructType([
    T.StructField("event_id", T.StringType()),
    T.StructField("site", T.StringType()),
    T.StructField("type", T.StringType()),
    T.StructField("ts", T.LongType()),
    T.StructField("visitor_id", T.StringType()),
])

T0 = 1_763_800_000_000  # 2025-11-22 08:26:40 UTC
MIN = 60_000


def ms(dt: str) -> int:
    return int(datetime.fromisoformat(dt + "+00:00").timestamp() * 1000)


@pytest.fixture
def events(spark):
    rows = [
        ("e1", "a", "pageview", ms("2026-11-21T10:00:05"), "v1"),
        ("e2", "a", "pageview", ms("2026-11-21T10:00:50"), "v2"),
        ("e2", "a", "pageview", ms("2026-11-21T10:00:50"), "v2"),  # tracker retry
        ("e3", "a", "click", ms("2026-11-21T10:00:59"), "v3"),  # counted as a visitor, not a pageview
        ("e4", "a", "pageview", ms("2026-11-21T10:01:00"), "v1"),  # next minute, same visitor
        ("e5", "b", "pageview", ms("2026-11-21T23:59:59"), "v1"),  # other site: same id, other visitor
    ]
    return with_event_time(spark.createDataFrame(rows, EVENT_SCHEMA)).withColumn("timezone", F.lit("UTC"))


def collect(df, *cols):
    return sorted(tuple(r[c] for c in cols) for r in df.collect())


def test_traffic_by_minute_exact(events):
    out = traffic(dedupe_events(events, within_watermark=False), "minute", exact_visitors=True)
    assert collect(out, "site", "bucket", "pageviews", "visitors") == [
        ("a", datetime(2026, 11, 21, 10, 0), 2, 3),
        ("a", datetime(2026, 11, 21, 10, 1), 1, 1),
        ("b", datetime(2026, 11, 21, 23, 59), 1, 1),
    ]


def test_traffic_by_hour_and_day_counts_a_visitor_once(events):
    deduped = dedupe_events(events, within_watermark=False)
    assert collect(traffic(deduped, "hour", exact_visitors=True), "site", "bucket", "pageviews", "visitors") == [
        ("a", datetime(2026, 11, 21, 10), 3, 3),
        ("b", datetime(2026, 11, 21, 23), 1, 1),
    ]
    assert collect(traffic(deduped, "day", exact_visitors=True), "site", "bucket", "pageviews", "visitors") == [
        ("a", datetime(2026, 11, 21), 3, 3),
        ("b", datetime(2026, 11, 21), 1, 1),
    ]


def test_without_dedupe_the_retry_is_counted_twice(events):
    """Guards the test above: the duplicate really is in the input."""
    out = traffic(events, "day", exact_visitors=True)
    assert collect(out, "site", "pageviews") == [("a", 4), ("b", 1)]


def test_estimated_visitors_come_from_the_sketch(events):
    out = traffic(dedupe_events(events, within_watermark=False), "hour", exact_visitors=False).collect()
    by_site = {r["site"]: r for r in out}
    # HLL is exact for tiny cardinalities.
    assert by_site["a"]["visitors"] == 3
    assert isinstance(by_site["a"]["visitors_sketch"], (bytes, bytearray))


def test_sketches_merge_across_buckets(events):
    """Visitors of a range are a union of bucket sketches: v1 in two minutes is one visitor."""
    minutes = traffic(dedupe_events(events, within_watermark=False), "minute", exact_visitors=True)
    sketches = [bytes(r["visitors_sketch"]) for r in minutes.where("site = 'a'").collect()]
    assert len(sketches) == 2
    assert union_estimate(sketches) == 3  # v1, v2, v3: not 3 + 1


def test_parse_events_drops_poison_messages(spark):
    raw = spark.createDataFrame(
        [
            ('{"event_id":"e1","site":"a","type":"pageview","ts":1763800000000,"url":"/x","visitor_id":"v"}',),
            ("not json at all",),
            ('{"site":"a","type":"pageview"}',),  # no event_id, no ts
            ('{"event_id":"e2","site":"a","type":"pageview","ts":1763800060000,"extra":{"k":1}}',),
        ],
        "value string",
    )
    out = parse_events(raw)
    assert collect(out, "event_id", "event_time") == [
        ("e1", datetime(2025, 11, 22, 8, 26, 40)),
        ("e2", datetime(2025, 11, 22, 8, 27, 40)),
    ]


def test_hours_and_days_follow_the_site_zone(spark):
    """Paris on its DST fall-back night has two 02:00 hours; Kolkata's hours start at :30."""
    rows = [
        ("p1", "paris", "pageview", ms("2026-10-25T00:10:00"), "v1"),  # 02:10 CEST
        ("p2", "paris", "pageview", ms("2026-10-25T01:10:00"), "v2"),  # 02:10 CET, an hour later
        ("p3", "paris", "pageview", ms("2026-10-24T22:30:00"), "v3"),  # 00:30 local: Oct 25
        ("p4", "paris", "pageview", ms("2026-10-24T21:59:00"), "v4"),  # 23:59 local: Oct 24
        ("k1", "kolkata", "pageview", ms("2026-11-21T09:29:00"), "v1"),  # 14:59 IST
        ("k2", "kolkata", "pageview", ms("2026-11-21T09:30:00"), "v2"),  # 15:00 IST
    ]
    zones = {"paris": "Europe/Paris", "kolkata": "Asia/Kolkata"}
    events = with_event_time(spark.createDataFrame(rows, EVENT_SCHEMA)).withColumn(
        "timezone", F.create_map(*[F.lit(x) for kv in zones.items() for x in kv])[F.col("site")])
    hours = collect(traffic(events, "hour", exact_visitors=True), "site", "bucket", "pageviews")
    assert hours == [
        ("kolkata", datetime(2026, 11, 21, 8, 30), 1),  # 14:00 IST
        ("kolkata", datetime(2026, 11, 21, 9, 30), 1),  # 15:00 IST
        ("paris", datetime(2026, 10, 24, 21, 0), 1),
        ("paris", datetime(2026, 10, 24, 22, 0), 1),
        ("paris", datetime(2026, 10, 25, 0, 0), 1),
        ("paris", datetime(2026, 10, 25, 1, 0), 1),
    ]
    days = collect(traffic(events, "day", exact_visitors=True), "site", "bucket", "pageviews")
    assert days == [
        ("kolkata", datetime(2026, 11, 20, 18, 30), 2),
        ("paris", datetime(2026, 10, 23, 22, 0), 1),
        ("paris", datetime(2026, 10, 24, 22, 0), 3),
    ]


KEYED_SCHEMA = T.StructType(EVENT_SCHEMA.fields + [
    T.StructField("url", T.StringType()),
    T.StructField("path", T.StringType()),
    T.StructField("referrer", T.StringType()),
    T.StructField("name", T.StringType()),
    T.StructField("props", T.MapType(T.StringType(), T.StringType())),
])


def test_every_event_counts_once_in_every_view(spark):
    t = ms("2026-11-21T10:00:00")
    rows = [
        ("a", "s", "pageview", t, "v1", "https://shop.test/p?utm_source=news&utm_medium=email&utm_campaign=bf",
         "/p", "https://mail.test/", None, None),
        ("b", "s", "pageview", t, "v2", "https://shop.test/", "/", "https://www.google.fr/search?q=x", None, None),
        ("c", "s", "pageview", t, "v3", "https://shop.test/", "/", "https://t.co/abc", None, None),
        ("d", "s", "pageview", t, "v3", "https://shop.test/p", "/p", "https://shop.test/", None, None),
        ("e", "s", "custom", t, "v1", "https://shop.test/p", "/p", None, "signup", {"plan": "pro", "trial": "true"}),
        ("f", "s", "click", t, "v2", "not a url at all %%", None, "::::", None, {"plan": "free", "element": "cta"}),
        ("g", "s", "pageview", t, "v4", "https://shop.test/x", "/x", "https://blog.example.org/post", None, None),
    ]
    events = (with_event_time(spark.createDataFrame(rows, KEYED_SCHEMA)).withColumn("timezone", F.lit("UTC"))
              .withColumn("country", F.when(F.col("visitor_id") == "v1", "FR"))
              .withColumn("device", F.when(F.col("visitor_id") == "v1", "mobile").otherwise("desktop"))
              .withColumn("browser", F.lit("Firefox")).withColumn("os", F.lit(None).cast("string")))
    events = with_acquisition(events)
    goals = (Goal("s", "Signed up", "event", "signup"), Goal("s", "Product", "page", "/p*"),
             Goal("other", "Home", "page", "/"))
    out = views(events, "day", exact_visitors=True, goals=goals)
    got = {(r["view_name"], r["dim"]): (r["pageviews"], r["events"], r["visitors"]) for r in out.collect()}
    clicks = {(r["view_name"], r["dim"]): (r["clicks"], r["impressions"]) for r in out.collect()}
    assert clicks[("traffic", "")] == (1, 0) and clicks[("element", "cta")] == (1, 0)
    assert got == {
        ("country", "FR"): (1, 2, 1), ("country", "(none)"): (4, 5, 3),
        ("device", "mobile"): (1, 2, 1), ("device", "desktop"): (4, 5, 3),
        ("browser", "Firefox"): (5, 7, 4), ("os", "(none)"): (5, 7, 4),
        ("element", "cta"): (0, 1, 1), ("prop:element", "cta"): (0, 1, 1),
        # an event goal by name; a page goal by path pattern, pageviews only; not another site's goal
        ("goal", "Signed up"): (0, 1, 1), ("goal", "Product"): (2, 2, 2),
        ("traffic", ""): (5, 7, 4),
        ("page", "/p"): (2, 3, 2), ("page", "/"): (2, 2, 2), ("page", "/x"): (1, 1, 1), ("page", "(none)"): (0, 1, 1),
        # classified by the batch layer's step (the rule run by Spark), as these carry no stamp
        ("channel", "Email"): (1, 1, 1), ("channel", "Organic Search"): (1, 1, 1),
        ("channel", "Organic Social"): (1, 1, 1), ("channel", "Internal"): (1, 1, 1),
        ("channel", "Direct"): (0, 1, 1), ("channel", "Unassigned"): (0, 1, 1), ("channel", "Referral"): (1, 1, 1),
        ("source", "news"): (1, 1, 1), ("source", "Google"): (1, 1, 1), ("source", "Twitter"): (1, 1, 1),
        ("source", "shop.test"): (1, 1, 1), ("source", "Direct"): (0, 1, 1), ("source", "(unknown)"): (0, 1, 1),
        ("source", "blog.example.org"): (1, 1, 1),
        ("utm_source", "news"): (1, 1, 1), ("utm_source", "(none)"): (4, 6, 4),
        ("utm_medium", "email"): (1, 1, 1), ("utm_medium", "(none)"): (4, 6, 4),
        ("utm_campaign", "bf"): (1, 1, 1), ("utm_campaign", "(none)"): (4, 6, 4),
        ("event_name", "pageview"): (5, 5, 4), ("event_name", "signup"): (0, 1, 1), ("event_name", "click"): (0, 1, 1),
        ("prop:plan", "pro"): (0, 1, 1), ("prop:plan", "free"): (0, 1, 1), ("prop:trial", "true"): (0, 1, 1),
    }


def test_parse_events_reads_only_the_fields_asked_for(spark):
    raw = spark.createDataFrame(
        [('{"event_id":"e1","site":"a","type":"pageview","ts":1763800000000,"url":"/x","visitor_id":"v",'
          '"country":"FR"}',), ('{"site":"a","type":"pageview","visitor_id":"v"}',)], "value string")
    out = parse_events(raw, fields=("type", "visitor_id"))
    assert out.columns == ["event_id", "site", "type", "ts", "visitor_id", "event_time"]
    assert collect(out, "event_id", "type", "visitor_id") == collect(parse_events(raw), "event_id", "type",
                                                                     "visitor_id")

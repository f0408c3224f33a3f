"""Batch views on the real stack equal an independent pandas computation of the same
events: per site time zone (a DST day, a half-hour zone), every granularity, duplicates."""
from __future__ import annotations

import json
import random
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

pytestmark = pytest.mark.stack
UTC = timezone.utc
DAY = date(2026, 10, 25)  # Europe/Paris falls back: a 25-hour day
ZONES = {"paris": "Europe/Paris", "kolkata": "Asia/Kolkata", "newyork": "America/New_York"}


PATHS = ["/", "/pricing", "/blog/a", "/blog/b"]
REFERRERS = [None, "https://www.google.com/", "https://x.test/", "https://news.ycombinator.com/", "https://elsewhere.org/"]


def make_events(rng: random.Random, site: str) -> list[dict]:
    """Events from the day before to the day after, so the zone decides what is in the day."""
    start = datetime(2026, 10, 24, 0, tzinfo=UTC)
    events = []
    for _ in range(400):
        ts = start + timedelta(seconds=rng.randrange(3 * 86400))
        path = rng.choice(PATHS)
        query = rng.choice(["", "", "?utm_source=newsletter&utm_campaign=fall"])
        kind = rng.choice(["pageview"] * 3 + ["click", "custom"])
        events.append({"event_id": str(uuid.uuid4()), "site": site, "type": kind,
                       "ts": int(ts.timestamp() * 1000), "url": f"https://x.test{path}{query}", "path": path,
                       "referrer": rng.choice(REFERRERS), "visitor_id": f"v{rng.randrange(60)}", "received_at": 0,
                       "schema_version": 2, "name": "signup" if kind == "custom" else None,
                       "props": {"plan": rng.choice(["free", "pro"])} if kind == "custom" else None})
    events += [dict(e) for e in rng.sample(events, 25)]  # retried deliveries
    return events


def source(e: dict) -> str:
    """The referrer classification, written again independently of the Spark expression."""
    from urllib.parse import parse_qs, urlsplit

    if "utm_source" in parse_qs(urlsplit(e["url"]).query):
        return "campaign"
    host = urlsplit(e["referrer"]).hostname if e["referrer"] else None
    if not host:
        return "direct"
    if host == urlsplit(e["url"]).hostname:
        return "internal"
    if host.endswith("google.com"):
        return "search"
    if host == "news.ycombinator.com":
        return "social"
    return "other sites"


def dimension_value(e: dict, view: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    if view == "page":
        return e["path"]
    if view == "referrer_source":
        return source(e)
    if view == "utm_campaign":
        return parse_qs(urlsplit(e["url"]).query).get("utm_campaign", ["(none)"])[0]
    if view == "event_name":
        return e["name"] or e["type"]
    return (e["props"] or {}).get("plan")  # prop:plan


def reference(events: list[dict], tz: str, granularity: str, view: str = "traffic") -> dict:
    """pandas: dedupe, keep the zone's day, bucket on the local clock, count. Keys are
    buckets for the site total, (bucket, value) for a breakdown."""
    df = pd.DataFrame(events).drop_duplicates("event_id")
    if view != "traffic":
        df = df.assign(dim=[dimension_value(e, view) for e in df.to_dict("records")]).dropna(subset=["dim"])
    utc = pd.to_datetime(df["ts"], unit="ms", utc=True)
    local = utc.dt.tz_convert(tz)
    df = df[local.dt.date == DAY]
    utc, local = utc[df.index], local[df.index]
    if granularity == "minute":
        bucket = utc.dt.floor("min")
    elif granularity == "hour":
        offset = local.apply(lambda t: t.utcoffset())
        bucket = (local.dt.tz_localize(None).dt.floor("h") - offset).dt.tz_localize("UTC")
    else:
        bucket = local.dt.normalize().apply(lambda t: t.tz_convert("UTC"))
    df = df.assign(bucket=bucket.values)
    keys = ["bucket"] if view == "traffic" else ["bucket", "dim"]
    out = df.groupby(keys).agg(pageviews=("type", lambda s: int((s == "pageview").sum())),
                               events=("event_id", "count"), visitors=("visitor_id", "nunique"))
    def utc_key(b) -> datetime:
        ts = pd.Timestamp(b)
        return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()

    if view == "traffic":
        return {utc_key(b): (int(r.pageviews), int(r.events), int(r.visitors)) for b, r in out.iterrows()}
    return {(utc_key(b), d): (int(r.pageviews), int(r.events), int(r.visitors)) for (b, d), r in out.iterrows()}


def stored(cassandra, keyspace: str, site: str, granularity: str, view: str = "traffic") -> dict:
    from views.catalogue import periods_between

    out = {}
    for period in periods_between(granularity, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC)):
        rows = cassandra.execute(
            f"SELECT bucket, dim, pageviews, events, visitors FROM {keyspace}.batch_views WHERE site=%s "
            "AND view_name=%s AND granularity=%s AND period=%s", (site, view, granularity, period))
        for r in rows:
            key = r.bucket.replace(tzinfo=UTC) if view == "traffic" else (r.bucket.replace(tzinfo=UTC), r.dim)
            out[key] = (r.pageviews, r.events, r.visitors)
    return out


def test_batch_views_equal_an_independent_count(spark, cassandra, stack, tmp_path):
    from batch_layer.job import run_day
    from infra.sites import add_site
    from speed_layer.job import archive_frame

    rng = random.Random(20261025)
    sites = {f"parity-{name}-{uuid.uuid4().hex[:6]}": tz for name, tz in ZONES.items()}
    events = {site: make_events(rng, site) for site in sites}
    for site, tz in sites.items():
        add_site(cassandra, stack.keyspace, site, ["x.test"], tz)

    # The master dataset exactly as the archive query lays it out.
    raw = spark.createDataFrame([(json.dumps(e),) for evs in events.values() for e in evs], "value STRING")
    master = str(tmp_path / "master")
    archive_frame(raw).write.partitionBy("date").parquet(master)

    counted = run_day(spark, cassandra, stack.keyspace, master, DAY, sites)

    for site, tz in sites.items():
        for granularity in ("minute", "hour", "day"):
            expected = reference(events[site], tz, granularity)
            assert stored(cassandra, stack.keyspace, site, granularity) == expected, (site, granularity)
        for view in ("page", "referrer_source", "utm_campaign", "event_name", "prop:plan"):
            for granularity in ("hour", "day"):
                expected = reference(events[site], tz, granularity, view)
                assert len({d for _, d in expected}) > 1, view  # a real breakdown, not one value
                assert stored(cassandra, stack.keyspace, site, granularity, view) == expected, (site, view, granularity)
        in_day = [e for e in events[site] if datetime.fromtimestamp(e["ts"] / 1000, UTC).astimezone(ZoneInfo(tz)).date() == DAY]
        assert counted[site] == len(in_day)  # duplicates included: the archive keeps them
    paris = next(s for s in sites if "paris" in s)
    assert len(reference(events[paris], "Europe/Paris", "hour")) > 23  # the 25-hour day really is covered
    boundary = cassandra.execute(f"SELECT boundary FROM {stack.keyspace}.batch_boundary WHERE site=%s", (paris,)).one()
    assert boundary.boundary.replace(tzinfo=UTC) == datetime(2026, 10, 25, 23, tzinfo=UTC)  # Paris midnight, CET

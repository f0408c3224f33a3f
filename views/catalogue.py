"""The view catalogue: which measures, granularities and views exist, defined once.

Pure Python, no Spark: the serving layer reads it to validate requests, and both
processing layers use it to name what they write.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

UTC = timezone.utc


@dataclass(frozen=True)
class Measure:
    name: str
    doc: str
    # How buckets combine into a larger range: "sum" for counts, "sketch" for unique counts
    # (a union of HLL sketches: a visitor seen in two hours is one visitor for the day).
    merge: str


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("pageviews", "events of type 'pageview'", "sum"),
        Measure("visitors", "distinct visitor ids with any event", "sketch"),
    )
}

# Span of a bucket, as Spark's window() duration and as a timedelta.
GRANULARITIES: dict[str, tuple[str, timedelta]] = {
    "minute": ("1 minute", timedelta(minutes=1)),
    "hour": ("1 hour", timedelta(hours=1)),
    "day": ("1 day", timedelta(days=1)),
}

# The site-total traffic view; breakdown views (dimensions) come with the full catalogue.
TRAFFIC_VIEW = "traffic"
TOTAL_DIM = ""

# The speed layer writes minute buckets; coarser speed buckets are merged at read time.
SPEED_GRANULARITY = "minute"


def bucket_start(ts: datetime, granularity: str) -> datetime:
    """Floor a UTC instant to the start of its bucket."""
    ts = ts.astimezone(UTC)
    if granularity == "minute":
        return ts.replace(second=0, microsecond=0)
    if granularity == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        return ts.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown granularity {granularity!r}")


def period_key(granularity: str, bucket: datetime) -> str:
    """The partition of a bucket: keeps Cassandra partitions bounded (≤1440 minutes a day,
    ≤744 hours a month, ≤366 days a year)."""
    bucket = bucket.astimezone(UTC)
    if granularity == "minute":
        return bucket.strftime("%Y-%m-%d")
    if granularity == "hour":
        return bucket.strftime("%Y-%m")
    if granularity == "day":
        return bucket.strftime("%Y")
    raise ValueError(f"unknown granularity {granularity!r}")


def periods_between(granularity: str, start: datetime, end: datetime) -> list[str]:
    """The partitions that hold buckets in [start, end)."""
    keys: list[str] = []
    step = {"minute": timedelta(days=1), "hour": timedelta(days=28), "day": timedelta(days=365)}[granularity]
    t = bucket_start(start, "day")
    while t < end:
        key = period_key(granularity, t)
        if key not in keys:
            keys.append(key)
        t += step
    last = period_key(granularity, end - timedelta(microseconds=1)) if end > start else None
    if last and last not in keys:
        keys.append(last)
    return keys


def bucket_starts(start: datetime, end: datetime, granularity: str) -> list[datetime]:
    """Every bucket start in [start, end), the first one floored to its bucket."""
    step = GRANULARITIES[granularity][1]
    t = bucket_start(start, granularity)
    out = []
    while t < end:
        out.append(t)
        t += step
    return out

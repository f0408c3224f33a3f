"""The view catalogue: which measures, granularities and views exist, defined once.

Pure Python, no Spark: the serving layer reads it to validate requests, and both
processing layers use it to name what they write.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc


@dataclass(frozen=True)
class Measure:
    name: str
    doc: str
    # How buckets combine into a larger range: "sum" for counts, "sketch" for unique counts
    # (a union of HLL sketches: a visitor seen in two hours is one visitor for the day),
    # "ratio" for a quotient of two sums, computed after merging (never an average of ratios).
    merge: str
    column: str = ""  # the stored column of a "sum" or "sketch" measure
    ratio: tuple[str, str] = ("", "")  # numerator and denominator columns of a "ratio"
    scale: float = 1.0  # stored unit -> reported unit (milliseconds -> seconds)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.ratio if self.merge == "ratio" else (self.column,)

    @property
    def source(self) -> str:
        """"event" if computed from events, "session" from sessions (see SESSION_COLUMNS)."""
        return "session" if set(self.columns) <= set(SESSION_COLUMNS) else "event"


# What each count column counts: the events of one type, or (None) every event. The
# layers' aggregations and the archive's SQL (views.sql) count from this one table.
EVENT_COUNTS: dict[str, str | None] = {"pageviews": "pageview", "events": None, "clicks": "click",
                                       "impressions": "impression"}

# The stored columns of a view row. Event views (from events) fill EVENT_COLUMNS; session
# views (from sessions, attributed to the bucket where the session started) fill
# SESSION_COLUMNS. The site total ("traffic") row carries both; each layer writes each set
# with its own upsert, so neither overwrites the other.
EVENT_COLUMNS = ("pageviews", "events", "visitors", "visitors_sketch", "clicks", "impressions")
SESSION_COLUMNS = ("sessions", "bounces", "duration_ms", "session_pageviews")


def _sum(name: str, doc: str, column: str = "", scale: float = 1.0) -> Measure:
    return Measure(name, doc, "sum", column or name, scale=scale)


def _ratio(name: str, doc: str, num: str, den: str, scale: float = 1.0) -> Measure:
    return Measure(name, doc, "ratio", ratio=(num, den), scale=scale)


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        _sum("pageviews", "events of type 'pageview'"),
        _sum("events", "events of any type; in the 'goal' breakdown, the goal's conversions"),
        Measure("visitors", "distinct visitor ids with any event; in the 'goal' breakdown, visitors who converted",
                "sketch", "visitors"),
        _sum("clicks", "events of type 'click'"),
        _sum("impressions", "events of type 'impression'"),
        _ratio("ctr", "click-through: clicks / impressions (per element in the 'element' breakdown)",
               "clicks", "impressions"),
        _sum("sessions", "sessions that started in the bucket (in 'entry_page': entries; in 'exit_page': exits)"),
        _sum("bounces", "sessions with exactly one pageview"),
        _ratio("bounce_rate", "bounces / sessions", "bounces", "sessions"),
        _sum("duration", "total session duration, seconds (first to last event of each session)", "duration_ms",
             0.001),
        _ratio("avg_duration", "average session duration, seconds", "duration_ms", "sessions", 0.001),
        _ratio("pages_per_session", "pageviews of sessions / sessions", "session_pageviews", "sessions"),
    )
}
# Goals: in the 'goal' breakdown, events are conversions and visitors the visitors who
# converted; the conversion rate divides those by all the site's visitors in the range.
GOAL_VIEW = "goal"
CONVERSION_MEASURES = {
    "conversions": "the goal's conversions (events that reached it)",
    "conversion_rate": "visitors who converted / all the site's visitors in the range",
}

# Sessions: more than this much inactivity ends a session (Spark's session_window gap,
# both layers: events exactly the gap apart stay in one session).
DEFAULT_SESSION_GAP = "30 minutes"

# Span of a bucket, as Spark's window() duration and as a timedelta.
GRANULARITIES: dict[str, tuple[str, timedelta]] = {
    "minute": ("1 minute", timedelta(minutes=1)),
    "hour": ("1 hour", timedelta(hours=1)),
    "day": ("1 day", timedelta(days=1)),
}

# The site-total traffic view; every dimension is a breakdown view of its own.
TRAFFIC_VIEW = "traffic"
TOTAL_DIM = ""


@dataclass(frozen=True)
class Dimension:
    name: str
    doc: str
    source: str = "event"  # "session": a breakdown of session views (entry and exit pages)
    # An event dimension's value: the first of these event fields that is set, else
    # "(none)" (schemas.sources.NONE_VALUE). Empty for the dimensions derived otherwise
    # (an element, a goal, a session's pages), whose transforms say how.
    fields: tuple[str, ...] = ()


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("page", "the page path", fields=("path",)),
        Dimension("entry_page", "the first page of the session", "session"),
        Dimension("exit_page", "the last page of the session", "session"),
        Dimension("channel", "the kind of traffic the visit came from, GA4's default channel group plus Internal "
                             "and AI Assistants (README: Acquisition channels)", fields=("channel",)),
        Dimension("source", "who sent the visit: a search engine, social network, ... by name (Google), a "
                            "tagged utm_source, a referring site's host, or Direct", fields=("source",)),
        Dimension("utm_source", "utm_source of the page URL", fields=("utm_source",)),
        Dimension("utm_medium", "utm_medium of the page URL", fields=("utm_medium",)),
        Dimension("utm_campaign", "utm_campaign of the page URL", fields=("utm_campaign",)),
        Dimension("country", "the visitor's country (ISO 3166 code), from the collector's offline IP database",
                  fields=("country",)),
        Dimension("device", "device type: desktop, mobile, tablet, bot", fields=("device",)),
        Dimension("browser", "the browser's family", fields=("browser",)),
        Dimension("os", "the operating system's family", fields=("os",)),
        Dimension("event_name", "the custom event's name, else the event type", fields=("name", "type")),
        Dimension("element", "the element of a click or impression (props.element); see ctr"),
        Dimension(GOAL_VIEW, "the site's goals (`parallax goal add`): events are conversions"),
    )
}
SESSION_DIMENSIONS = tuple(d.name for d in DIMENSIONS.values() if d.source == "session")
# Former dimension names the reports still answer, for one release: name -> (the dimension
# that replaced it, what to tell the caller).
DIMENSION_ALIASES: dict[str, tuple[str, str]] = {
    "referrer_source": ("channel", "'referrer_source' is replaced by 'channel' (the kind of traffic) and 'source' "
                                   "(who sent it); it answers as 'channel' until the next release"),
}
# Custom properties: one breakdown view per property key, named "prop:<key>".
PROPERTY_VIEW_PREFIX = "prop:"
OTHER_VALUE = "(other)"
# Breakdown rows are stored at these granularities: a top-N needs no minute detail in
# history. The speed layer stores minutes, which are all it writes.
BREAKDOWN_GRANULARITIES = ("hour", "day")


def is_breakdown_view(view: str) -> bool:
    return view in DIMENSIONS or (view.startswith(PROPERTY_VIEW_PREFIX) and len(view) > len(PROPERTY_VIEW_PREFIX))

# The speed layer writes minute buckets; coarser speed buckets are merged at read time.
SPEED_GRANULARITY = "minute"


def as_utc(ts: datetime) -> datetime:
    """An aware UTC instant. Spark and the Cassandra driver hand timestamps back as naive
    datetimes in UTC (Spark's session zone)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def bucket_start(ts: datetime, granularity: str, tz: str | ZoneInfo = "UTC") -> datetime:
    """The UTC start of the bucket holding instant ``ts``, buckets following zone ``tz``.

    Minutes are the same in every zone (offsets are whole minutes). An hour or a day is
    floored on the local wall clock, keeping the instant's own offset, so DST days have 23
    or 25 hour buckets and half-hour zones get their own hour boundaries.
    """
    zone = _zone(tz)
    if granularity == "minute":
        return ts.astimezone(UTC).replace(second=0, microsecond=0)
    local = ts.astimezone(zone)
    if granularity == "hour":
        offset = local.utcoffset()
        floored = local.replace(tzinfo=None, minute=0, second=0, microsecond=0)
        return (floored - offset).replace(tzinfo=UTC)
    if granularity == "day":
        return datetime.combine(local.date(), time.min, tzinfo=zone).astimezone(UTC)
    raise ValueError(f"unknown granularity {granularity!r}")


def next_bucket(start: datetime, granularity: str, tz: str | ZoneInfo = "UTC") -> datetime:
    """The start of the bucket after the one starting at ``start``."""
    zone = _zone(tz)
    if granularity == "day":
        local_day = start.astimezone(zone).date() + timedelta(days=1)
        return datetime.combine(local_day, time.min, tzinfo=zone).astimezone(UTC)
    return start + GRANULARITIES[granularity][1]


def local_day_bounds(day: date, tz: str | ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where ``day`` starts and ends in zone ``tz``."""
    zone = _zone(tz)
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


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


def bucket_starts(start: datetime, end: datetime, granularity: str, tz: str | ZoneInfo = "UTC") -> list[datetime]:
    """Every bucket start in [start, end), the first one floored to its bucket."""
    t = bucket_start(start, granularity, tz)
    out = []
    while t < end:
        out.append(t)
        t = next_bucket(t, granularity, tz)
    return out

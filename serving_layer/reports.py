"""The reports facade: one function per question; routes only parse and call these.

A report is the Lambda merge: buckets that end at or before the site's batch boundary come
from the batch views (exact, ``final``); later buckets come from the speed views (minute
buckets merged up to the requested granularity, ``final: false``). Unique visitors of a
merged bucket or of the totals are the union of HLL sketches, never a sum.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from store.views import MEASURE_COLUMNS
from views.catalogue import (
    CONVERSION_MEASURES,
    DIMENSION_ALIASES,
    DIMENSIONS,
    GOAL_VIEW,
    GRANULARITIES,
    MEASURES,
    OTHER_VALUE,
    SPEED_GRANULARITY,
    TRAFFIC_VIEW,
    bucket_start,
    bucket_starts,
    is_breakdown_view,
)
from views.sketches import union_estimate

MAX_BUCKETS = 5000
SUM_COLUMNS = tuple(c for c in MEASURE_COLUMNS if c not in ("visitors", "visitors_sketch"))
REALTIME_MINUTES = 5


class ReportError(ValueError):
    """The request cannot be answered as asked; the message says why."""


class ViewStore(Protocol):
    def boundary(self, site: str) -> datetime | None: ...
    def rows(self, table: str, site: str, granularity: str, start: datetime, end: datetime,
             view: str = ...) -> list[Any]: ...


@dataclass
class _Acc:
    """Measures of several view rows (or accumulators) added together."""

    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUM_COLUMNS, 0))
    visitors: int = 0  # right for a single row; a union of sketches otherwise
    sketches: list[bytes] = field(default_factory=list)
    rows: int = 0

    def add(self, row: Any) -> None:
        for col in SUM_COLUMNS:
            self.sums[col] += getattr(row, col) or 0
        self.visitors = row.visitors or 0
        if row.visitors_sketch:
            self.sketches.append(row.visitors_sketch)
        self.rows += 1

    def merge(self, other: _Acc) -> None:
        for col in SUM_COLUMNS:
            self.sums[col] += other.sums[col]
        self.visitors = other.visitors
        self.sketches.extend(other.sketches)
        self.rows += other.rows

    @property
    def empty(self) -> bool:
        return not any(self.sums.values())

    def unique_visitors(self) -> int:
        """Exact for a single stored row; a union of the sketches for more."""
        return self.visitors if self.rows <= 1 or not self.sketches else union_estimate(self.sketches)

    def value(self, metric: str) -> int | float | None:
        m = MEASURES[metric]
        if m.merge == "sketch":
            return self.unique_visitors()
        if m.merge == "sum":
            total = self.sums[m.column]
            return total if m.scale == 1.0 else round(total * m.scale, 3)
        num, den = (self.sums[c] for c in m.ratio)
        return round(num / den * m.scale, 4) if den else None

    def values(self, metrics: list[str]) -> dict[str, int | float | None]:
        return {m: self.value(m) for m in metrics}


def _check_metrics(metrics: list[str], *, need_one: bool = False, extra: tuple[str, ...] = ()) -> None:
    """Every metric known (and at least one, if ``need_one``)."""
    unknown = [m for m in metrics if m not in MEASURES and m not in extra]
    if unknown or (need_one and not metrics):
        raise ReportError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; known: "
                          f"{', '.join((*MEASURES, *extra))}")


def traffic_report(store: ViewStore, site: str, metrics: list[str], start: datetime, end: datetime,
                   granularity: str, tz: str = "UTC") -> dict[str, Any]:
    _check_metrics(metrics)
    if granularity not in GRANULARITIES:
        raise ReportError(f"unknown granularity {granularity!r}; use one of {', '.join(GRANULARITIES)}")
    if end <= start:
        raise ReportError("'to' must be after 'from'")
    zone = ZoneInfo(tz)
    # Counted before the buckets are listed: a range of years in minutes is refused at once.
    about = (end - start) / GRANULARITIES[granularity][1]
    if about > MAX_BUCKETS + 1:
        raise ReportError(f"about {int(about)} {granularity} buckets asked for; at most {MAX_BUCKETS}: "
                          "choose a coarser granularity or a shorter range")
    starts = bucket_starts(start, end, granularity, tz)
    if len(starts) > MAX_BUCKETS:
        raise ReportError(f"{len(starts)} {granularity} buckets asked for; at most {MAX_BUCKETS}: "
                          "choose a coarser granularity or a shorter range")
    first = starts[0]
    boundary = store.boundary(site)
    # Buckets that end by the boundary are final. The boundary sits on the site's local
    # midnight, a bucket edge at every granularity; if it does not (the site's zone changed
    # after a batch run), the bucket around it comes from the speed views.
    split = min(max(bucket_start(boundary, granularity, tz), first), end) if boundary else first

    buckets: dict[datetime, _Acc] = defaultdict(_Acc)
    for row in store.rows("batch_views", site, granularity, first, split):
        buckets[row.bucket].add(row)
    for row in store.rows("speed_views", site, SPEED_GRANULARITY, split, end):
        buckets[bucket_start(row.bucket, granularity, tz)].add(row)

    out_buckets = []
    total = _Acc()
    for t in starts:
        acc = buckets.get(t, _Acc())
        final = boundary is not None and t < split
        if not acc.empty:
            # A bucket's own visitors (exact, or one union) stand for it in the total's union.
            total.merge(acc)
        entry: dict[str, Any] = {"start": t.astimezone(zone).isoformat(), "final": final}
        entry.update(acc.values(metrics))
        out_buckets.append(entry)
    return {
        "site": site,
        "timezone": tz,
        "boundary": boundary.astimezone(zone).isoformat() if boundary else None,
        "granularity": granularity,
        "from": first.astimezone(zone).isoformat(),
        "to": end.astimezone(zone).isoformat(),
        "metrics": metrics,
        "buckets": out_buckets,
        "totals": total.values(metrics),
    }


def _split(store: ViewStore, site: str, start: datetime, end: datetime, tz: str) -> tuple[datetime, datetime,
                                                                                           datetime | None]:
    """A range's first hour, where batch rows end and speed rows begin, and the boundary."""
    first = bucket_start(start, "hour", tz)
    boundary = store.boundary(site)
    split = min(max(bucket_start(boundary, "hour", tz), first), end) if boundary else first
    return first, split, boundary


def _range_rows(store: ViewStore, site: str, view: str, first: datetime, split: datetime, end: datetime,
                tz: str) -> list[Any]:
    """The rows of ``view`` covering [first, end): batch rows before ``split`` (day rows for
    whole days of history, else hour rows), speed minute rows from it on."""
    whole_days = bucket_start(first, "day", tz) == first and bucket_start(split, "day", tz) == split
    return (store.rows("batch_views", site, "day" if whole_days else "hour", first, split, view=view)
            + store.rows("speed_views", site, SPEED_GRANULARITY, split, end, view=view))


def breakdown_report(store: ViewStore, site: str, dimension: str, metrics: list[str], start: datetime,
                     end: datetime, tz: str = "UTC", limit: int = 10) -> dict[str, Any]:
    """The top ``limit`` values of a dimension over [start, end), by the first metric, and
    everything else as one "(other)" row (its visitors a union of sketches, not a sum).

    Session dimensions (entry and exit pages) take session measures; the others event
    measures. The goal breakdown adds conversions and conversion_rate (visitors who
    converted over all the site's visitors in the range). A former dimension name
    (``DIMENSION_ALIASES``) answers as its replacement, with a deprecation notice."""
    deprecated = None
    if dimension in DIMENSION_ALIASES:
        dimension, deprecated = DIMENSION_ALIASES[dimension]
    if not is_breakdown_view(dimension):
        raise ReportError(f"unknown dimension {dimension!r}; use one of {', '.join(DIMENSIONS)} or prop:<key>")
    goal = dimension == GOAL_VIEW
    _check_metrics(metrics, need_one=True, extra=tuple(CONVERSION_MEASURES) if goal else ())
    source = DIMENSIONS[dimension].source if dimension in DIMENSIONS else "event"
    wrong = [m for m in metrics if m in MEASURES and MEASURES[m].source != source]
    if wrong:
        fits = [m for m, d in MEASURES.items() if d.source == source]
        raise ReportError(f"metric(s) {', '.join(wrong)} do not break down by {dimension!r}, a breakdown of "
                          f"{source}s; use {', '.join(fits)}")
    if end <= start:
        raise ReportError("'to' must be after 'from'")
    if not 1 <= limit <= 1000:
        raise ReportError("'limit' must be between 1 and 1000")
    zone = ZoneInfo(tz)
    first, split, boundary = _split(store, site, start, end, tz)
    values: dict[str, _Acc] = defaultdict(_Acc)
    for row in _range_rows(store, site, dimension, first, split, end, tz):
        values[row.dim].add(row)
    site_visitors = None
    if goal and "conversion_rate" in metrics:
        everyone = _Acc()
        for row in _range_rows(store, site, TRAFFIC_VIEW, first, split, end, tz):
            everyone.add(row)
        site_visitors = everyone.unique_visitors()

    def as_dict(acc: _Acc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in metrics:
            if m == "conversions":
                out[m] = acc.sums["events"]
            elif m == "conversion_rate":
                out[m] = round(acc.unique_visitors() / site_visitors, 4) if site_visitors else None
            else:
                out[m] = acc.value(m)
        return out

    ranked = sorted(((v, as_dict(acc)) for v, acc in values.items()),
                    key=lambda item: (-(item[1][metrics[0]] or 0), item[0]))
    top, rest = ranked[:limit], [v for v, _ in ranked[limit:]]
    other = None
    if rest:
        acc = _Acc()
        for v in rest:
            acc.merge(values[v])
        other = {"value": OTHER_VALUE, "values": len(rest), **as_dict(acc)}
    return {
        "site": site,
        "timezone": tz,
        "dimension": dimension,
        "boundary": boundary.astimezone(zone).isoformat() if boundary else None,
        "final": boundary is not None and split >= end,
        "from": first.astimezone(zone).isoformat(),
        "to": end.astimezone(zone).isoformat(),
        "metrics": metrics,
        "rows": [{"value": v, **vals} for v, vals in top],
        "other": other,
        **({"deprecated": deprecated} if deprecated else {}),
    }


def realtime_report(store: ViewStore, site: str, now: datetime, tz: str = "UTC") -> dict[str, Any]:
    """What is happening now, from the speed views: unique visitors of the last five
    minutes and the current one (a union of minute sketches), and each of those minutes."""
    current = bucket_start(now, "minute")
    since = current - timedelta(minutes=REALTIME_MINUTES)
    minutes: dict[datetime, _Acc] = defaultdict(_Acc)
    everyone = _Acc()
    for row in store.rows("speed_views", site, SPEED_GRANULARITY, since, current + timedelta(minutes=1)):
        minutes[row.bucket].add(row)
        everyone.add(row)
    zone = ZoneInfo(tz)
    shown = ("pageviews", "events", "visitors")
    return {
        "site": site,
        "timezone": tz,
        "at": now.astimezone(zone).isoformat(),
        "visitors_last_5_minutes": everyone.unique_visitors() if everyone.rows else 0,
        "current_minute": {"start": current.astimezone(zone).isoformat(),
                           **minutes.get(current, _Acc()).values(list(shown))},
        "minutes": [{"start": (since + timedelta(minutes=i)).astimezone(zone).isoformat(),
                     **minutes.get(since + timedelta(minutes=i), _Acc()).values(list(shown))}
                    for i in range(REALTIME_MINUTES + 1)],
    }

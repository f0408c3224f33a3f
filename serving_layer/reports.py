"""The reports facade: one function per question; routes only parse and call these.

A report is the Lambda merge: buckets that end at or before the site's batch boundary come
from the batch views (exact, ``final``); later buckets come from the speed views (minute
buckets merged up to the requested granularity, ``final: false``). Unique visitors of a
merged bucket or of the totals are the union of HLL sketches, never a sum.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from views.catalogue import (
    DIMENSIONS,
    GRANULARITIES,
    MEASURES,
    OTHER_VALUE,
    SPEED_GRANULARITY,
    bucket_start,
    bucket_starts,
    is_breakdown_view,
)
from views.transforms import HLL_LG_K

MAX_BUCKETS = 5000


class ReportError(ValueError):
    """The request cannot be answered as asked; the message says why."""


class ViewStore(Protocol):
    def boundary(self, site: str) -> datetime | None: ...
    def rows(self, table: str, site: str, granularity: str, start: datetime, end: datetime,
             view: str = ...) -> list[Any]: ...


@dataclass
class _Acc:
    """Measures of several view rows (or accumulators) added together."""

    pageviews: int = 0
    events: int = 0
    visitors: int = 0  # right for a single row; a union of sketches otherwise
    sketches: list[bytes] = field(default_factory=list)

    def merge(self, pageviews: int, events: int, visitors: int, sketches: list[bytes]) -> None:
        self.pageviews += pageviews
        self.events += events
        self.visitors = visitors
        self.sketches.extend(sketches)

    def add(self, row: Any) -> None:
        self.merge(row.pageviews, row.events, row.visitors, [row.visitors_sketch] if row.visitors_sketch else [])

    def unique_visitors(self, rows: int) -> int:
        return self.visitors if rows <= 1 or not self.sketches else union_estimate(self.sketches)


def _check_metrics(metrics: list[str], *, need_one: bool = False) -> None:
    """Every metric known (and at least one, if ``need_one``)."""
    unknown = [m for m in metrics if m not in MEASURES]
    if unknown or (need_one and not metrics):
        raise ReportError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; known: {', '.join(MEASURES)}")


def union_estimate(sketches: list[bytes]) -> int:
    """Distinct visitors of several buckets: the estimate of the union of their sketches."""
    from datasketches import hll_sketch, hll_union

    union = hll_union(HLL_LG_K)
    for blob in sketches:
        union.update(hll_sketch.deserialize(blob))
    return int(round(union.get_result().get_estimate()))


def traffic_report(store: ViewStore, site: str, metrics: list[str], start: datetime, end: datetime,
                   granularity: str, tz: str = "UTC") -> dict[str, Any]:
    _check_metrics(metrics)
    if granularity not in GRANULARITIES:
        raise ReportError(f"unknown granularity {granularity!r}; use one of {', '.join(GRANULARITIES)}")
    if end <= start:
        raise ReportError("'to' must be after 'from'")
    zone = ZoneInfo(tz)
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
    nonempty = 0
    for t in starts:
        acc = buckets.get(t, _Acc())
        final = boundary is not None and t < split
        values = {"pageviews": acc.pageviews, "events": acc.events, "visitors": acc.unique_visitors(len(acc.sketches))}
        if acc.events:
            nonempty += 1
            total.merge(acc.pageviews, acc.events, values["visitors"], acc.sketches)
        entry: dict[str, Any] = {"start": t.astimezone(zone).isoformat(), "final": final}
        entry.update({m: values[m] for m in metrics})
        out_buckets.append(entry)
    totals = {"pageviews": total.pageviews, "events": total.events, "visitors": total.unique_visitors(nonempty)}
    return {
        "site": site,
        "timezone": tz,
        "boundary": boundary.astimezone(zone).isoformat() if boundary else None,
        "granularity": granularity,
        "from": first.astimezone(zone).isoformat(),
        "to": end.astimezone(zone).isoformat(),
        "metrics": metrics,
        "buckets": out_buckets,
        "totals": {m: totals[m] for m in metrics},
    }


def breakdown_report(store: ViewStore, site: str, dimension: str, metrics: list[str], start: datetime,
                     end: datetime, tz: str = "UTC", limit: int = 10) -> dict[str, Any]:
    """The top ``limit`` values of a dimension over [start, end), by the first metric, and
    everything else as one "(other)" row (its visitors a union of sketches, not a sum)."""
    if not is_breakdown_view(dimension):
        raise ReportError(f"unknown dimension {dimension!r}; use one of {', '.join(DIMENSIONS)} or prop:<key>")
    _check_metrics(metrics, need_one=True)  # the first metric ranks the values
    if end <= start:
        raise ReportError("'to' must be after 'from'")
    if not 1 <= limit <= 1000:
        raise ReportError("'limit' must be between 1 and 1000")
    zone = ZoneInfo(tz)
    first = bucket_start(start, "hour", tz)
    boundary = store.boundary(site)
    split = min(max(bucket_start(boundary, "hour", tz), first), end) if boundary else first
    # Whole days of history come from day rows; a range that starts or ends inside a day
    # from hour rows.
    whole_days = bucket_start(first, "day", tz) == first and bucket_start(split, "day", tz) == split
    values: dict[str, _Acc] = defaultdict(_Acc)
    rows_per_value: dict[str, int] = defaultdict(int)
    for row in store.rows("batch_views", site, "day" if whole_days else "hour", first, split, view=dimension):
        values[row.dim].add(row)
        rows_per_value[row.dim] += 1
    for row in store.rows("speed_views", site, SPEED_GRANULARITY, split, end, view=dimension):
        values[row.dim].add(row)
        rows_per_value[row.dim] += 1

    def as_dict(acc: _Acc, rows: int) -> dict[str, int]:
        all_values = {"pageviews": acc.pageviews, "events": acc.events, "visitors": acc.unique_visitors(rows)}
        return {m: all_values[m] for m in metrics}

    ranked = sorted(((v, as_dict(acc, rows_per_value[v])) for v, acc in values.items()),
                    key=lambda item: (-item[1][metrics[0]], item[0]))
    top, rest = ranked[:limit], [v for v, _ in ranked[limit:]]
    other = None
    if rest:
        acc = _Acc()
        for v in rest:
            acc.merge(values[v].pageviews, values[v].events, 0, values[v].sketches)
        other = {"value": OTHER_VALUE, "values": len(rest), **as_dict(acc, 2)}
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
    }

"""The reports facade: one function per question; routes only parse and call these.

A report is the Lambda merge: buckets that end at or before the site's batch boundary come
from the batch views (exact, ``final``); later buckets come from the speed views (minute
buckets merged up to the requested granularity, ``final: false``). Unique visitors of a
merged bucket or of the totals are the union of HLL sketches, never a sum.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from views.catalogue import GRANULARITIES, MEASURES, SPEED_GRANULARITY, bucket_start, bucket_starts
from views.transforms import HLL_LG_K

MAX_BUCKETS = 5000


class ReportError(ValueError):
    """The request cannot be answered as asked; the message says why."""


class ViewStore(Protocol):
    def boundary(self, site: str) -> datetime | None: ...
    def rows(self, table: str, site: str, granularity: str, start: datetime, end: datetime) -> list[Any]: ...


@dataclass
class _Acc:
    pageviews: int = 0
    visitors: int = 0
    sketches: list[bytes] | None = None


def union_estimate(sketches: list[bytes]) -> int:
    """Distinct visitors of several buckets: the estimate of the union of their sketches."""
    from datasketches import hll_sketch, hll_union

    union = hll_union(HLL_LG_K)
    for blob in sketches:
        union.update(hll_sketch.deserialize(blob))
    return int(round(union.get_result().get_estimate()))


def traffic_report(store: ViewStore, site: str, metrics: list[str], start: datetime, end: datetime,
                   granularity: str, tz: str = "UTC") -> dict[str, Any]:
    unknown = [m for m in metrics if m not in MEASURES]
    if unknown:
        raise ReportError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(MEASURES)}")
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
        acc = buckets[row.bucket]
        acc.pageviews, acc.visitors = row.pageviews, row.visitors
        acc.sketches = [row.visitors_sketch] if row.visitors_sketch else []
    for row in store.rows("speed_views", site, SPEED_GRANULARITY, split, end):
        acc = buckets[bucket_start(row.bucket, granularity, tz)]
        acc.pageviews += row.pageviews
        acc.visitors = row.visitors  # right for one minute; recomputed from sketches below
        acc.sketches = (acc.sketches or []) + ([row.visitors_sketch] if row.visitors_sketch else [])

    out_buckets = []
    all_sketches: list[bytes] = []
    total_pageviews = 0
    for t in starts:
        acc = buckets.get(t, _Acc())
        final = boundary is not None and t < split
        sketches = acc.sketches or []
        visitors = acc.visitors if final or len(sketches) <= 1 else union_estimate(sketches)
        all_sketches.extend(sketches)
        total_pageviews += acc.pageviews
        entry: dict[str, Any] = {"start": t.astimezone(zone).isoformat(), "final": final}
        values = {"pageviews": acc.pageviews, "visitors": visitors}
        entry.update({m: values[m] for m in metrics})
        out_buckets.append(entry)

    nonempty = [b for b in out_buckets if b.get("visitors") or b.get("pageviews")]
    if len(nonempty) == 1 and "visitors" in metrics:
        total_visitors = nonempty[0]["visitors"]
    else:
        total_visitors = union_estimate(all_sketches) if all_sketches else 0
    totals = {"pageviews": total_pageviews, "visitors": total_visitors}
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

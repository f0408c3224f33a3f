"""The reports facade: one function per question; routes only parse and call these.

A report is the Lambda merge: buckets that end at or before the site's batch boundary come
from the batch views (exact, ``final``); later buckets come from the speed views (minute
buckets merged up to the requested granularity, ``final: false``). The boundary cannot pass
a day no batch run computed (a gap): an answer lists the gaps in its range (``gaps``). Unique visitors of a
merged bucket or of the totals are the union of HLL sketches, never a sum.

Filters (``views.filters``) are answered from the views where one dimension's view holds
the answer: any one condition on a report (the rows of that dimension's view whose value
matches it, merged per bucket), and a breakdown filtered on its own dimension. Anything
else, several conditions or a breakdown filtered on another dimension, is computed on
demand from the master dataset (``on_demand``): every answer says which (``computed_from``).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from serving_layer.reports import on_demand
from serving_layer.reports.merge import Measures
from serving_layer.reports.on_demand import ArchiveReader, OnDemandError, Scope
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
from views.filters import Filter
from views.goals import Goal

MAX_BUCKETS = 5000
REALTIME_MINUTES = 5
REALTIME_PAGES = 10  # the pages being viewed now: the most viewed of the realtime minutes
COMPARISONS = ("previous_period", "previous_year")


class ReportError(ValueError):
    """The request cannot be answered as asked; the message says why (and ``parameter``
    names the parameter at fault, where one is)."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class ViewStore(Protocol):
    def boundary(self, site: str) -> datetime | None: ...
    def gaps(self, site: str) -> tuple[date, ...]: ...
    def rows(self, table: str, site: str, granularity: str, start: datetime, end: datetime,
             view: str = ...) -> list[Any]: ...


class Sources(ViewStore, Protocol):
    """The views, and what on-demand answers read: the site's goals, the archive."""
    archive: ArchiveReader
    max_archive_events: int

    def site_goals(self, site: str) -> tuple[Goal, ...]: ...


def _check_metrics(metrics: list[str], *, need_one: bool = False, extra: tuple[str, ...] = ()) -> None:
    """Every metric known (and at least one, if ``need_one``)."""
    unknown = [m for m in metrics if m not in MEASURES and m not in extra]
    if unknown or (need_one and not metrics):
        raise ReportError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; known: "
                          f"{', '.join((*MEASURES, *extra))}", "metrics")


def _split_at(boundary: datetime | None, first: datetime, end: datetime, granularity: str, tz: str) -> datetime:
    """Where batch rows end and speed rows begin: the boundary, on a bucket edge. It sits on
    the site's local midnight, an edge at every granularity; if it does not (the site's
    zone changed after a batch run), the bucket around it comes from the speed views."""
    return min(max(bucket_start(boundary, granularity, tz), first), end) if boundary else first


def _check_filters(filters: Sequence[Filter]) -> None:
    for f in filters:
        if f.dimension == GOAL_VIEW and f.op != "==":
            raise ReportError(f"filter {f}: a goal filter takes '==' (an event may convert several goals)",
                              "filters")
    if len(filters) > 1 and any(f.source == "session" for f in filters):
        raise ReportError("a filter on entry_page or exit_page (sessions) is the only filter of a report", "filters")


def answered_on_demand(filters: Sequence[Filter], dimension: str | None = None) -> bool:
    """Whether a report (``dimension`` None) or a breakdown with these filters is computed
    from the master dataset rather than from the views."""
    if dimension is None:
        return len(filters) > 1
    return bool(filters) and not (len(filters) == 1 and filters[0].dimension == dimension)


def _unavailable(metrics: Sequence[str], source: str, why: str) -> dict[str, str]:
    """The metrics a view of ``source`` rows does not hold, and why."""
    return {m: why for m in metrics if m in MEASURES and MEASURES[m].source != source}


@dataclass
class _Series:
    starts: list[datetime]
    buckets: dict[datetime, Measures]
    total: Measures
    boundary: datetime | None
    split: datetime
    computed_from: str
    unavailable: dict[str, str]
    gaps: list[date]

    def final(self, t: datetime, zone: ZoneInfo) -> bool:
        """Whether the bucket starting at ``t`` is final: before the boundary, not in a gap."""
        return self.boundary is not None and t < self.split and t.astimezone(zone).date() not in self.gaps


def _gaps_in(store: ViewStore, site: str, first: datetime, end: datetime, tz: str) -> list[date]:
    """The site's gaps (days no batch run computed, though a later one was) among the days
    of its zone that [first, end) touches. Normally after the boundary; one before it (a
    backfill found events before the days computed so far) comes from batch views the
    boundary never waited for, so it is not final either."""
    zone = ZoneInfo(tz)
    lo, hi = first.astimezone(zone).date(), (end - timedelta(microseconds=1)).astimezone(zone).date()
    return [d for d in store.gaps(site) if lo <= d <= hi]


def _bucket_starts(start: datetime, end: datetime, granularity: str, tz: str) -> list[datetime]:
    if granularity not in GRANULARITIES:
        raise ReportError(f"unknown granularity {granularity!r}; use one of {', '.join(GRANULARITIES)}",
                          "granularity")
    if end <= start:
        raise ReportError("'to' must be after 'from'", "to")
    # Counted before the buckets are listed: a range of years in minutes is refused at once.
    about = (end - start) / GRANULARITIES[granularity][1]
    if about > MAX_BUCKETS + 1:
        raise ReportError(f"about {int(about)} {granularity} buckets asked for; at most {MAX_BUCKETS}: "
                          "choose a coarser granularity or a shorter range", "granularity")
    starts = bucket_starts(start, end, granularity, tz)
    if len(starts) > MAX_BUCKETS:
        raise ReportError(f"{len(starts)} {granularity} buckets asked for; at most {MAX_BUCKETS}: "
                          "choose a coarser granularity or a shorter range", "granularity")
    return starts


def _series(store: Sources, site: str, metrics: list[str], start: datetime, end: datetime, granularity: str,
            tz: str, filters: Sequence[Filter]) -> _Series:
    starts = _bucket_starts(start, end, granularity, tz)
    first = starts[0]
    boundary = store.boundary(site)
    split = _split_at(boundary, first, end, granularity, tz)
    gaps = _gaps_in(store, site, first, end, tz)
    if answered_on_demand(filters):
        return _series_on_demand(store, site, metrics, starts, end, boundary, split, filters, gaps)
    view, keep, unavailable = TRAFFIC_VIEW, None, {}
    if filters:
        f = filters[0]
        view, keep = f.dimension, f.matches
        unavailable = _unavailable(metrics, f.source, f"{'session' if f.source == 'event' else 'event'} measures "
                                                      f"are not broken down by {f.dimension!r}")
        if granularity == SPEED_GRANULARITY and split > first:
            raise ReportError("a filtered report has minute buckets only after the batch boundary (the speed "
                              "layer's range): use hour or day", "granularity")
    buckets: dict[datetime, Measures] = defaultdict(Measures)
    for row in store.rows("batch_views", site, granularity, first, split, view):
        if keep is None or keep(row.dim):
            buckets[row.bucket].add(row)
    for row in store.rows("speed_views", site, SPEED_GRANULARITY, split, end, view):
        if keep is None or keep(row.dim):
            buckets[bucket_start(row.bucket, granularity, tz)].add(row)
    total = Measures()
    for acc in buckets.values():
        if not acc.empty:
            total.merge(acc)  # a bucket's own visitors (exact, or one union) stand for it in the union
    return _Series(starts, buckets, total, boundary, split, "views", unavailable, gaps)


def _series_on_demand(store: Sources, site: str, metrics: list[str], starts: list[datetime], end: datetime,
                      boundary: datetime | None, split: datetime, filters: Sequence[Filter], gaps: list[date]
                      ) -> _Series:
    scope = Scope(site, starts[0], end, tuple(filters), store.site_goals(site))
    try:
        counted, total = on_demand.bucket_counts(store.archive, scope, starts, store.max_archive_events)
    except OnDemandError as exc:
        raise ReportError(str(exc), "filters") from None
    buckets = {t: Measures.counted(values) for t, values in counted.items()}
    why = "computed from the archive, which counts events, not sessions"
    unavailable = {m: why for m in metrics if m in MEASURES and m not in on_demand.MEASURES_ANSWERED}
    return _Series(starts, buckets, Measures.counted(total), boundary, split, "archive", unavailable, gaps)


def _iso(t: datetime | None, zone: ZoneInfo) -> str | None:
    return t.astimezone(zone).isoformat() if t else None


def traffic_report(store: Sources, site: str, metrics: list[str], start: datetime, end: datetime,
                   granularity: str, tz: str = "UTC", filters: Sequence[Filter] = (),
                   compare: str | None = None) -> dict[str, Any]:
    """Measures per bucket over [start, end) and in total; with ``filters``, of the events
    (or sessions) that pass them all; with ``compare``, the same for the previous period or
    year beside it."""
    _check_metrics(metrics)
    _check_filters(filters)
    if compare is not None and compare not in COMPARISONS:
        raise ReportError(f"compare must be one of {', '.join(COMPARISONS)}", "compare")
    zone = ZoneInfo(tz)
    s = _series(store, site, metrics, start, end, granularity, tz, filters)
    out_buckets = [{"start": t.astimezone(zone).isoformat(), "final": s.final(t, zone),
                    **s.buckets.get(t, Measures()).values(metrics, s.unavailable)} for t in s.starts]
    answer: dict[str, Any] = {
        "site": site,
        "timezone": tz,
        "boundary": _iso(s.boundary, zone),
        "granularity": granularity,
        "from": s.starts[0].astimezone(zone).isoformat(),
        "to": end.astimezone(zone).isoformat(),
        "metrics": metrics,
        "filters": [str(f) for f in filters],
        "computed_from": s.computed_from,
        "buckets": out_buckets,
        "totals": s.total.values(metrics, s.unavailable),
        "gaps": [d.isoformat() for d in s.gaps],
    }
    if s.unavailable:
        answer["unavailable"] = s.unavailable
    if s.computed_from == "archive":
        answer["archive_as_of"] = _iso(store.archive.committed_at(), zone)
    if compare:
        answer["comparison"] = _comparison(store, site, metrics, start, end, granularity, tz, filters, compare,
                                           answer["totals"])
    return answer


def previous_range(start: datetime, end: datetime, tz: str, how: str) -> tuple[datetime, datetime]:
    """The range to compare [start, end) with. ``previous_period``: the same length just
    before (whole days of the site's zone stay whole days, across a DST change);
    ``previous_year``: the same dates and times a year earlier (29 February: the 28th)."""
    zone = ZoneInfo(tz)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    midnights = local_start.time() == time.min and local_end.time() == time.min
    if how == "previous_year":
        def year_back(t: datetime) -> datetime:
            d = t.date()
            d = d.replace(year=d.year - 1, day=min(d.day, 28 if d.month == 2 and d.day == 29 else d.day))
            return datetime.combine(d, t.timetz().replace(tzinfo=None), tzinfo=zone)
        return year_back(local_start).astimezone(start.tzinfo), year_back(local_end).astimezone(end.tzinfo)
    if midnights:
        days = (local_end.date() - local_start.date()).days
        first: date = local_start.date() - timedelta(days=days)
        return (datetime.combine(first, time.min, tzinfo=zone).astimezone(start.tzinfo),
                datetime.combine(local_start.date(), time.min, tzinfo=zone).astimezone(start.tzinfo))
    return start - (end - start), start


def _comparison(store: Sources, site: str, metrics: list[str], start: datetime, end: datetime, granularity: str,
                tz: str, filters: Sequence[Filter], how: str, totals: dict[str, Any]) -> dict[str, Any]:
    zone = ZoneInfo(tz)
    p_start, p_end = previous_range(start, end, tz, how)
    p = _series(store, site, metrics, p_start, p_end, granularity, tz, filters)

    def change(now: Any, before: Any) -> float | None:
        return round((now - before) / before, 4) if isinstance(now, (int, float)) and before else None

    previous_totals = p.total.values(metrics, p.unavailable)
    return {
        "compare": how,
        "from": p.starts[0].astimezone(zone).isoformat(),
        "to": p_end.astimezone(zone).isoformat(),
        "computed_from": p.computed_from,
        "buckets": [{"start": t.astimezone(zone).isoformat(), "final": p.final(t, zone),
                     **p.buckets.get(t, Measures()).values(metrics, p.unavailable)} for t in p.starts],
        "totals": previous_totals,
        "change": {m: change(totals.get(m), previous_totals.get(m)) for m in metrics},
        "gaps": [d.isoformat() for d in p.gaps],
    }


def _range_rows(store: ViewStore, site: str, view: str, first: datetime, split: datetime, end: datetime,
                tz: str) -> list[Any]:
    """The rows of ``view`` covering [first, end): batch rows before ``split`` (day rows for
    whole days of history, else hour rows), speed minute rows from it on."""
    whole_days = bucket_start(first, "day", tz) == first and bucket_start(split, "day", tz) == split
    return (store.rows("batch_views", site, "day" if whole_days else "hour", first, split, view=view)
            + store.rows("speed_views", site, SPEED_GRANULARITY, split, end, view=view))


def breakdown_report(store: Sources, site: str, dimension: str, metrics: list[str], start: datetime,
                     end: datetime, tz: str = "UTC", limit: int = 10, filters: Sequence[Filter] = ()
                     ) -> dict[str, Any]:
    """The top ``limit`` values of a dimension over [start, end), by the first metric, and
    everything else as one "(other)" row (its visitors a union of sketches, not a sum).

    Session dimensions (entry and exit pages) take session measures; the others event
    measures. The goal breakdown adds conversions and conversion_rate (visitors who
    converted over all the site's visitors in the range). A former dimension name
    (``DIMENSION_ALIASES``) answers as its replacement, with a deprecation notice.
    ``filters``: of the events (or sessions) that pass them all."""
    deprecated = None
    if dimension in DIMENSION_ALIASES:
        dimension, deprecated = DIMENSION_ALIASES[dimension]
    if not is_breakdown_view(dimension):
        raise ReportError(f"unknown dimension {dimension!r}; use one of {', '.join(DIMENSIONS)} or prop:<key>",
                          "dimension")
    goal = dimension == GOAL_VIEW
    _check_metrics(metrics, need_one=True, extra=tuple(CONVERSION_MEASURES) if goal else ())
    _check_filters(filters)
    source = DIMENSIONS[dimension].source if dimension in DIMENSIONS else "event"
    wrong = [m for m in metrics if m in MEASURES and MEASURES[m].source != source]
    if wrong:
        fits = [m for m, d in MEASURES.items() if d.source == source]
        raise ReportError(f"metric(s) {', '.join(wrong)} do not break down by {dimension!r}, a breakdown of "
                          f"{source}s; use {', '.join(fits)}", "metrics")
    if end <= start:
        raise ReportError("'to' must be after 'from'", "to")
    if not 1 <= limit <= 1000:
        raise ReportError("'limit' must be between 1 and 1000", "limit")
    zone = ZoneInfo(tz)
    first = bucket_start(start, "hour", tz)
    boundary = store.boundary(site)
    split = _split_at(boundary, first, end, "hour", tz)
    gaps = _gaps_in(store, site, first, end, tz)
    on_views = not answered_on_demand(filters, dimension)
    if on_views:
        values, site_visitors = _values_from_views(store, site, dimension, first, split, end, tz, filters,
                                                   goal and "conversion_rate" in metrics)
        computed_from = "views"
    else:
        if source == "session" or any(f.source == "session" for f in filters):
            raise ReportError("a breakdown by entry or exit page takes no filter on another dimension", "filters")
        values, site_visitors = _values_on_demand(store, site, dimension, first, end, filters, metrics)
        computed_from = "archive"

    def as_dict(acc: Measures) -> dict[str, Any]:
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
        if computed_from == "archive":
            scope = Scope(site, first, end, tuple(filters), store.site_goals(site))
            acc = Measures.counted(on_demand.rest_counts(store.archive, scope, dimension, [v for v, _ in top],
                                                         store.max_archive_events))
        else:
            acc = Measures()
            for v in rest:
                acc.merge(values[v])
        other = {"value": OTHER_VALUE, "values": len(rest), **as_dict(acc)}
    return {
        "site": site,
        "timezone": tz,
        "dimension": dimension,
        "boundary": _iso(boundary, zone),
        "final": boundary is not None and split >= end and not gaps,
        "gaps": [d.isoformat() for d in gaps],
        "from": first.astimezone(zone).isoformat(),
        "to": end.astimezone(zone).isoformat(),
        "metrics": metrics,
        "filters": [str(f) for f in filters],
        "computed_from": computed_from,
        "rows": [{"value": v, **vals} for v, vals in top],
        "other": other,
        **({"deprecated": deprecated} if deprecated else {}),
        **({"archive_as_of": _iso(store.archive.committed_at(), zone)} if computed_from == "archive" else {}),
    }


def _values_from_views(store: Sources, site: str, dimension: str, first: datetime, split: datetime, end: datetime,
                       tz: str, filters: Sequence[Filter], with_site_visitors: bool
                       ) -> tuple[dict[str, Measures], int | None]:
    keep = filters[0].matches if filters else None
    values: dict[str, Measures] = defaultdict(Measures)
    for row in _range_rows(store, site, dimension, first, split, end, tz):
        if keep is None or keep(row.dim):
            values[row.dim].add(row)
    site_visitors = None
    if with_site_visitors:
        everyone = Measures()
        for row in _range_rows(store, site, TRAFFIC_VIEW, first, split, end, tz):
            everyone.add(row)
        site_visitors = everyone.unique_visitors()
    return values, site_visitors


def _values_on_demand(store: Sources, site: str, dimension: str, first: datetime, end: datetime,
                      filters: Sequence[Filter], metrics: list[str]) -> tuple[dict[str, Measures], int]:
    cannot = [m for m in metrics if m in MEASURES and m not in on_demand.MEASURES_ANSWERED]
    if cannot:
        raise ReportError(f"metric(s) {', '.join(cannot)} cannot be computed from the archive", "metrics")
    scope = Scope(site, first, end, tuple(filters), store.site_goals(site))
    try:
        counted, everyone = on_demand.value_counts(store.archive, scope, dimension, store.max_archive_events)
    except OnDemandError as exc:
        raise ReportError(str(exc), "filters") from None
    return {v: Measures.counted(c) for v, c in counted.items()}, everyone["visitors"]


def realtime_report(store: ViewStore, site: str, now: datetime, tz: str = "UTC") -> dict[str, Any]:
    """What is happening now, from the speed views: unique visitors of the last five
    minutes and the current one (a union of minute sketches), each of those minutes, and
    the pages viewed most in them."""
    current = bucket_start(now, "minute")
    since = current - timedelta(minutes=REALTIME_MINUTES)
    minutes: dict[datetime, Measures] = defaultdict(Measures)
    everyone = Measures()
    for row in store.rows("speed_views", site, SPEED_GRANULARITY, since, current + timedelta(minutes=1)):
        minutes[row.bucket].add(row)
        everyone.add(row)
    pages: dict[str, Measures] = defaultdict(Measures)
    for row in store.rows("speed_views", site, SPEED_GRANULARITY, since, current + timedelta(minutes=1), view="page"):
        pages[row.dim].add(row)
    top_pages = sorted(((path, acc.values(["pageviews", "visitors"])) for path, acc in pages.items()),
                       key=lambda item: (-(item[1]["pageviews"] or 0), item[0]))[:REALTIME_PAGES]
    zone = ZoneInfo(tz)
    shown = ["pageviews", "events", "visitors"]
    return {
        "site": site,
        "timezone": tz,
        "at": now.astimezone(zone).isoformat(),
        "visitors_last_5_minutes": everyone.unique_visitors() if everyone.rows else 0,
        "current_minute": {"start": current.astimezone(zone).isoformat(),
                           **minutes.get(current, Measures()).values(shown)},
        "minutes": [{"start": (since + timedelta(minutes=i)).astimezone(zone).isoformat(),
                     **minutes.get(since + timedelta(minutes=i), Measures()).values(shown)}
                    for i in range(REALTIME_MINUTES + 1)],
        "pages": [{"value": path, **values} for path, values in top_pages],
    }

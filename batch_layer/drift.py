"""The drift record: how far the speed layer's views of a day were from the exact ones.

After a day's batch views are written, each site's per-minute totals of the speed layer
are compared with the batch layer's for the same minutes of that (local) day. Counts
should be equal on in-order data: a difference means events the speed layer dropped
behind its watermark, lost, or counted twice. Visitors differ by the sketch's error. The
record (``store.diagnostics``: one row per day, site and measure) tells an operator which
of these happened and how often, and ``GET /api/v1/sites/<site>/drift?day=`` serves it.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import Any

from cassandra.cluster import Session

from store.diagnostics import Diagnostics
from store.incidents import Incident, Incidents
from store.views import BATCH_TABLE, SPEED_TABLE, ViewReader
from views.catalogue import local_day_bounds
from views.sketches import union_estimate

log = logging.getLogger(__name__)

# The measures compared minute by minute; visitors are compared as the day's union of the
# speed layer's minute sketches against the batch layer's exact count of the day.
COUNT_MEASURES = ("pageviews", "events", "clicks", "impressions", "sessions", "bounces", "duration_ms",
                  "session_pageviews")
VISITORS = "visitors"


@dataclass(frozen=True)
class Drift:
    """One measure of one site's day: both layers' totals and how many minutes differed."""
    measure: str
    speed: int
    batch: int
    speed_minutes: int  # minutes the speed layer has a row for
    batch_minutes: int
    minutes_differing: int

    @property
    def difference(self) -> int:
        return self.speed - self.batch

    @property
    def relative(self) -> float | None:
        """speed - batch as a fraction of batch; None when batch is 0."""
        return self.difference / self.batch if self.batch else None


def compare(speed: Mapping[datetime, Mapping[str, Any]], batch: Mapping[datetime, Mapping[str, Any]],
            speed_visitors: int, batch_visitors: int) -> list[Drift]:
    """The drift of one site's day from its minute rows (bucket -> measure values) in each
    layer, and its visitors (the speed layer's union estimate, the batch layer's exact count)."""
    minutes = set(speed) | set(batch)

    def value(rows: Mapping[datetime, Mapping[str, Any]], minute: datetime, measure: str) -> int:
        row = rows.get(minute)
        return int(row.get(measure) or 0) if row is not None else 0

    out = []
    for measure in COUNT_MEASURES:
        differing = sum(1 for m in minutes if value(speed, m, measure) != value(batch, m, measure))
        out.append(Drift(measure, sum(value(speed, m, measure) for m in speed),
                         sum(value(batch, m, measure) for m in batch), len(speed), len(batch), differing))
    differing = sum(1 for m in minutes if int((speed.get(m) or {}).get(VISITORS) or 0)
                    != int((batch.get(m) or {}).get(VISITORS) or 0))
    out.append(Drift(VISITORS, speed_visitors, batch_visitors, len(speed), len(batch), differing))
    return out


def site_drift(reader: ViewReader, day: date, site: str, tz: str) -> list[Drift]:
    """Read both layers' minute rows of ``site``'s ``day`` and compare them."""
    start, end = local_day_bounds(day, tz)
    speed_rows = reader.rows(SPEED_TABLE, site, "minute", start, end)
    speed = {r.bucket: asdict(r) for r in speed_rows}
    batch = {r.bucket: asdict(r) for r in reader.rows(BATCH_TABLE, site, "minute", start, end)}
    sketches = [r.visitors_sketch for r in speed_rows if r.visitors_sketch]
    batch_day = reader.rows(BATCH_TABLE, site, "day", start, end)
    return compare(speed, batch, union_estimate(sketches) if sketches else 0,
                   int(batch_day[0].visitors or 0) if batch_day else 0)


def record_drift(session: Session, keyspace: str, day: date, sites: Mapping[str, str],
                 threshold: float | None = None) -> dict[str, list[Drift]]:
    """Compare and write the drift of ``day`` for every site (site -> zone); log a line per
    site whose counts differ, or whose speed views are gone (older than their TTL). With a
    ``threshold``, a site's measures off by more than it become one incident (an alarm)."""
    now = datetime.now(timezone.utc)
    reader = ViewReader(session, keyspace)
    drifts = {site: site_drift(reader, day, site, tz) for site, tz in sorted(sites.items())}
    Diagnostics(session, keyspace).write_drift(rows(day, drifts, now))
    incidents = Incidents(session, keyspace)
    for site, measures in drifts.items():
        log_site(day, site, measures)
        over = over_threshold(measures, threshold)
        if over:
            incidents.record(Incident(
                f"drift:{site}:{day}:{now.isoformat()}", "drift", site,
                f"{site}: the live figures of {day} were off by more than {threshold:.0%}", now,
                {"day": day.isoformat(), "threshold": threshold,
                 "measures": {d.measure: {"speed": d.speed, "batch": d.batch, "relative": round(d.relative or 0, 4)}
                              for d in over}}))
    return drifts


def over_threshold(measures: Iterable[Drift], threshold: float | None) -> list[Drift]:
    """The measures whose speed total was off by more than ``threshold`` of the batch's
    (none without a threshold, or when the speed layer has no views of the day)."""
    if threshold is None:
        return []
    return [d for d in measures if d.speed_minutes and d.relative is not None and abs(d.relative) > threshold]


def rows(day: date, drifts: Mapping[str, Iterable[Drift]], now: datetime) -> list[tuple]:
    """The drift record's rows (``store.diagnostics.DRIFT_COLUMNS``)."""
    return [(day, site, d.measure, d.speed, d.batch, d.speed_minutes, d.batch_minutes, d.minutes_differing, now)
            for site, measures in drifts.items() for d in measures]


def log_site(day: date, site: str, measures: list[Drift]) -> None:
    counts = [d for d in measures if d.measure != VISITORS]
    if counts and counts[0].batch_minutes and not counts[0].speed_minutes:
        log.info("%s drift of %s: no speed views for that day (expired after their TTL, or the speed layer "
                 "was not running)", day, site)
        return
    off = [d for d in counts if d.difference]
    if not off:
        log.info("%s drift of %s: speed and batch counts equal in every minute", day, site)
        return
    log.warning("%s drift of %s: %s", day, site, "; ".join(
        f"{d.measure} speed {d.speed} vs batch {d.batch} ({d.difference:+d}, {d.minutes_differing} minutes differ)"
        for d in off))

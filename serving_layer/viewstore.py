"""Reads of the views and the batch boundary from Cassandra, for the reports facade."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from views.catalogue import TOTAL_DIM, TRAFFIC_VIEW, periods_between
from views.store import MEASURE_COLUMNS, as_utc, select_cql


@dataclass(frozen=True)
class ViewRow:
    """One stored view row; a measure the row's writers did not fill reads as 0."""

    bucket: datetime
    dim: str = TOTAL_DIM
    pageviews: int = 0
    events: int = 0
    visitors: int = 0
    visitors_sketch: bytes | None = None
    clicks: int = 0
    impressions: int = 0
    sessions: int = 0
    bounces: int = 0
    duration_ms: int = 0
    session_pageviews: int = 0


class CassandraViewStore:
    def __init__(self, session: Any, keyspace: str) -> None:
        self.session = session
        self.keyspace = keyspace
        self._select = {t: session.prepare(select_cql(keyspace, t)) for t in ("speed_views", "batch_views")}
        self._boundary = session.prepare(f"SELECT boundary FROM {keyspace}.batch_boundary WHERE site = ?")
        self._dropped = session.prepare(f"SELECT dropped FROM {keyspace}.speed_dropped WHERE query = ? AND day = ?")
        self._site = session.prepare(f"SELECT site, timezone FROM {keyspace}.sites WHERE site = ?")
        self._drift = session.prepare(
            f"SELECT measure, speed_total, batch_total, speed_minutes, batch_minutes, minutes_differing, computed_at "
            f"FROM {keyspace}.batch_drift WHERE site = ? AND day = ?")

    def site_zone(self, site: str) -> str | None:
        """The site's IANA time zone, or None if the site is not registered."""
        row = self.session.execute(self._site, (site,)).one()
        return (row.timezone or "UTC") if row else None

    def dropped_late(self, day: date) -> dict[str, int]:
        """Events each speed query dropped behind the watermark on ``day`` (UTC)."""
        out = {}
        for query in ("speed_views", "speed_sessions"):
            rows = self.session.execute(self._dropped, (query, day))
            out[query] = sum(r.dropped or 0 for r in rows)
        return out

    def drift(self, site: str, day: date) -> list[dict[str, Any]]:
        """The drift record of ``site``'s ``day`` (see ``batch_layer.drift``); empty before
        the batch layer has computed that day."""
        return [{"measure": r.measure, "speed": r.speed_total, "batch": r.batch_total, "speed_minutes": r.speed_minutes,
                 "batch_minutes": r.batch_minutes, "minutes_differing": r.minutes_differing,
                 "computed_at": as_utc(r.computed_at).isoformat()}
                for r in self.session.execute(self._drift, (site, day))]

    def boundary(self, site: str) -> datetime | None:
        row = self.session.execute(self._boundary, (site,)).one()
        return as_utc(row.boundary) if row and row.boundary else None

    def rows(self, table: str, site: str, granularity: str, start: datetime, end: datetime,
             view: str = TRAFFIC_VIEW) -> list[ViewRow]:
        """Rows of ``view`` in ``table`` with buckets in [start, end): the site total, or
        one row per breakdown value and bucket."""
        if end <= start:
            return []
        out: list[ViewRow] = []
        for period in periods_between(granularity, start, end):
            for r in self.session.execute(self._select[table], (site, view, granularity, period, start, end)):
                values = {c: getattr(r, c) for c in MEASURE_COLUMNS}
                sketch = values.pop("visitors_sketch")
                out.append(ViewRow(as_utc(r.bucket), r.dim, visitors_sketch=sketch,
                                   **{c: v or 0 for c, v in values.items()}))
        return out


def utcnow() -> datetime:
    return datetime.now(timezone.utc)

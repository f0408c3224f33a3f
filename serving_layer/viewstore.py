"""Reads of the views and the batch boundary from Cassandra, for the reports facade."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from views.catalogue import TOTAL_DIM, TRAFFIC_VIEW, periods_between
from views.store import as_utc, select_cql


@dataclass(frozen=True)
class ViewRow:
    bucket: datetime
    pageviews: int
    events: int
    visitors: int
    visitors_sketch: bytes | None
    dim: str = TOTAL_DIM


class CassandraViewStore:
    def __init__(self, session: Any, keyspace: str) -> None:
        self.session = session
        self.keyspace = keyspace
        self._select = {t: session.prepare(select_cql(keyspace, t)) for t in ("speed_views", "batch_views")}
        self._boundary = session.prepare(f"SELECT boundary FROM {keyspace}.batch_boundary WHERE site = ?")
        self._site = session.prepare(f"SELECT site, timezone FROM {keyspace}.sites WHERE site = ?")

    def site_zone(self, site: str) -> str | None:
        """The site's IANA time zone, or None if the site is not registered."""
        row = self.session.execute(self._site, (site,)).one()
        return (row.timezone or "UTC") if row else None

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
                out.append(ViewRow(as_utc(r.bucket), r.pageviews or 0, r.events or 0, r.visitors or 0,
                                   r.visitors_sketch, r.dim))
        return out


def utcnow() -> datetime:
    return datetime.now(timezone.utc)

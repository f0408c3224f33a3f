"""The batch boundary (per site, the end of the last day whose batch views are complete)
and the record of batch runs."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timezone

from store.cql import Tables, upsert
from views.catalogue import as_utc


class Boundaries(Tables):
    def all(self) -> dict[str, datetime]:
        """Every site's batch boundary (UTC)."""
        rows = self.execute("SELECT site, boundary FROM {ks}.batch_boundary")
        return {r.site: as_utc(r.boundary) for r in rows if r.boundary}

    def of(self, site: str) -> datetime | None:
        return self.state(site)[0]

    def state(self, site: str) -> tuple[datetime | None, datetime | None]:
        """The site's boundary, and when a batch run last wrote its views."""
        row = self.execute("SELECT boundary, last_run_at FROM {ks}.batch_boundary WHERE site = ?", (site,)).one()
        if row is None:
            return None, None
        return (as_utc(row.boundary) if row.boundary else None), (as_utc(row.last_run_at) if row.last_run_at else None)

    def move_forward(self, ends: Mapping[str, datetime]) -> None:
        """Move each site's boundary forward to the end of the day just computed (its local
        midnight), never back: re-running an old day must not hide newer batch views."""
        current = self.all()
        now = datetime.now(timezone.utc)
        params = [(site, end, now) for site, end in ends.items() if current.get(site) is None or current[site] < end]
        upsert(self.session, self.statement(
            "INSERT INTO {ks}.batch_boundary (site, boundary, updated_at) VALUES (?, ?, ?)"), params)

    def record_run(self, day: date, counts: Mapping[str, tuple[int, int]], at: datetime) -> None:
        """One row per site of a batch run of ``day``: its events and duplicates."""
        upsert(self.session, self.statement(
            "INSERT INTO {ks}.batch_runs (day, site, events, duplicates, finished_at) VALUES (?, ?, ?, ?, ?)"),
            [(day, site, events, duplicates, at) for site, (events, duplicates) in sorted(counts.items())])
        upsert(self.session, self.statement("UPDATE {ks}.batch_boundary SET last_run_at = ? WHERE site = ?"),
               [(at, site) for site in sorted(counts)])

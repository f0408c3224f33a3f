"""The reprocess DAG's dry-run reports (``reprocess_reports``): per site, day and measure,
the day's total the batch views hold and the one a recomputation gives."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from store.cql import Tables, as_date, upsert
from views.catalogue import TOTAL_DIM, TRAFFIC_VIEW, local_day_bounds, period_key


@dataclass(frozen=True)
class Comparison:
    site: str
    day: date
    measure: str
    stored: int | None  # None: the batch layer never computed the day
    recomputed: int

    @property
    def differs(self) -> bool:
        return self.stored != self.recomputed


class ReprocessReports(Tables):
    def stored_totals(self, site: str, tz: str, day: date, measures: Sequence[str]) -> dict[str, int | None]:
        """The batch views' site total of ``day`` per measure; None for a measure no run has
        written (the day never computed; or only its sessions, by the run of the day after)."""
        start, _ = local_day_bounds(day, tz)
        row = self.execute(f"SELECT {', '.join(measures)} FROM {{ks}}.batch_views WHERE site = ? AND view_name = ? "
                           "AND granularity = 'day' AND period = ? AND bucket = ? AND dim = ?",
                           (site, TRAFFIC_VIEW, period_key("day", start), start, TOTAL_DIM)).one()
        return {m: (None if row is None or getattr(row, m) is None else int(getattr(row, m))) for m in measures}

    def write(self, run_id: str, comparisons: Iterable[Comparison], at: datetime) -> None:
        upsert(self.session, self.statement(
            "INSERT INTO {ks}.reprocess_reports (run_id, site, day, measure, stored, recomputed, computed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"),
            [(run_id, c.site, c.day, c.measure, c.stored, c.recomputed, at) for c in comparisons])

    def read(self, run_id: str) -> list[Comparison]:
        rows = self.execute("SELECT site, day, measure, stored, recomputed FROM {ks}.reprocess_reports "
                            "WHERE run_id = ?", (run_id,))
        return [Comparison(r.site, as_date(r.day), r.measure, r.stored,
                           r.recomputed or 0) for r in rows]

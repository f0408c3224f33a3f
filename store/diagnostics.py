"""What tells an operator how far the speed layer is from the truth: the events each speed
query dropped behind its watermark (``speed_dropped``), and the drift of a recomputed day
(``batch_drift``: both layers' totals per measure)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from store.cql import Tables, upsert
from views.catalogue import as_utc

# The speed layer's stateful queries, whose dropped counts are kept.
SPEED_QUERIES = ("speed_views", "speed_sessions")
DRIFT_COLUMNS = ("day", "site", "measure", "speed_total", "batch_total", "speed_minutes", "batch_minutes",
                 "minutes_differing", "computed_at")


class Diagnostics(Tables):
    def record_dropped(self, query: str, query_id: str, batch_id: int, dropped: int, at: datetime) -> None:
        """A micro-batch's events dropped behind the watermark, on the (UTC) day of ``at``.
        (query_id, batch_id) names one micro-batch: a replay rewrites its row."""
        self.execute("INSERT INTO {ks}.speed_dropped (query, day, query_id, batch_id, dropped, at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (query, at.date(), query_id, batch_id, dropped, at))

    def dropped(self, day: date) -> dict[str, int]:
        """Events each speed query dropped behind the watermark on ``day`` (UTC)."""
        return {query: sum(r.dropped or 0 for r in self.execute(
                    "SELECT dropped FROM {ks}.speed_dropped WHERE query = ? AND day = ?", (query, day)))
                for query in SPEED_QUERIES}

    def write_drift(self, rows: Iterable[tuple]) -> None:
        """Drift rows, each the values of ``DRIFT_COLUMNS``."""
        columns, marks = ", ".join(DRIFT_COLUMNS), ", ".join("?" for _ in DRIFT_COLUMNS)
        upsert(self.session, self.statement(f"INSERT INTO {{ks}}.batch_drift ({columns}) VALUES ({marks})"), rows)

    def drift(self, site: str, day: date) -> list[dict[str, Any]]:
        """The drift record of ``site``'s ``day``; empty before the batch layer computed it."""
        rows = self.execute("SELECT measure, speed_total, batch_total, speed_minutes, batch_minutes, "
                            "minutes_differing, computed_at FROM {ks}.batch_drift WHERE site = ? AND day = ?",
                            (site, day))
        return [{"measure": r.measure, "speed": r.speed_total, "batch": r.batch_total, "speed_minutes": r.speed_minutes,
                 "batch_minutes": r.batch_minutes, "minutes_differing": r.minutes_differing,
                 "computed_at": as_utc(r.computed_at).isoformat()} for r in rows]

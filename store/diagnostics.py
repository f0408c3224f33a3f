"""What tells an operator how far the speed layer is from the truth: how far each speed
query has got (``speed_progress``), the events each dropped behind its watermark
(``speed_dropped``), and the drift of a recomputed day (``batch_drift``: both layers'
totals per measure)."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from store.cql import Tables, upsert
from views.catalogue import as_utc

# The speed layer's stateful queries, whose dropped counts are kept.
SPEED_QUERIES = ("speed_views", "speed_sessions")
DRIFT_COLUMNS = ("day", "site", "measure", "speed_total", "batch_total", "speed_minutes", "batch_minutes",
                 "minutes_differing", "computed_at")


@dataclass(frozen=True)
class QueryProgress:
    """Where a speed query is: the Kafka offsets it has processed through, per topic and
    partition (the next offset to read), the newest event time it has seen, and when its
    offsets last moved and when it last reported."""
    query: str
    batch_id: int
    offsets: dict[str, dict[int, int]]
    newest_event: datetime | None
    watermark: datetime | None
    progressed_at: datetime | None
    heartbeat_at: datetime | None


def _opt_utc(ts: datetime | None) -> datetime | None:
    return as_utc(ts) if ts else None


class Diagnostics(Tables):
    def record_progress(self, query: str, query_id: str, batch_id: int, offsets: dict[str, dict[int, int]],
                        newest_event: datetime | None, watermark: datetime | None, input_rows: int,
                        at: datetime) -> None:
        """A micro-batch that read events: the offsets it reached and what it saw."""
        self.execute("INSERT INTO {ks}.speed_progress (query, query_id, batch_id, offsets, newest_event, watermark, "
                     "input_rows, progressed_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (query, query_id, batch_id, json.dumps(offsets), newest_event, watermark, input_rows, at, at))

    def heartbeat(self, query: str, at: datetime) -> None:
        """A report of a query that read nothing new (it is alive, and caught up)."""
        self.execute("UPDATE {ks}.speed_progress SET heartbeat_at = ? WHERE query = ?", (at, query))

    def progress(self, query: str) -> QueryProgress | None:
        row = self.execute("SELECT query, batch_id, offsets, newest_event, watermark, progressed_at, heartbeat_at "
                           "FROM {ks}.speed_progress WHERE query = ?", (query,)).one()
        if row is None:
            return None
        offsets = {topic: {int(p): int(o) for p, o in parts.items()}
                   for topic, parts in json.loads(row.offsets or "{}").items()}
        return QueryProgress(row.query, row.batch_id or 0, offsets, _opt_utc(row.newest_event),
                             _opt_utc(row.watermark), _opt_utc(row.progressed_at), _opt_utc(row.heartbeat_at))

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

"""Where a batch run's view frames go: into Cassandra, written while Spark computes the next
ones (``ViewWriter``), replacing the site-days' rows wholesale (``batch_layer.replace``), or,
for a dry run, only the day's site totals kept (``DayTotals``)."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime
from typing import Any, Protocol

from cassandra.cluster import Session
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_layer.replace import replace_rest, view_key
from store.replacement import RowKey
from store.views import BATCH_TABLE, ROW_KINDS, ViewWrites
from views.catalogue import EVENT_COLUMNS, SESSION_COLUMNS, TOTAL_DIM, TRAFFIC_VIEW, as_utc

log = logging.getLogger(__name__)


class ViewSink(Protocol):
    def write(self, view: DataFrame, granularity: str, kind: str, what: str) -> None: ...


class ViewWriter:
    """Upserts view frames into the batch views: each frame is collected in the caller's
    thread and written by one background thread, so that Spark computes the next frame
    while Cassandra takes the last one. Leaving the ``with`` block waits for every write
    and raises the first failure (each write retries while Cassandra is away).

    ``on_rows(rows, granularity, kind)`` sees every frame's rows before they are written
    (the run's validation). ``replace``: (day, {site: zone}) of a run that recomputes those
    site-days: once every write succeeded, the rows of the site-days it did not write again
    are removed (``batch_layer.replace``). A run that wrote nothing (no master dataset yet)
    removes nothing."""

    def __init__(self, session: Session, keyspace: str, now: datetime,
                 on_rows: Callable[[list[dict[str, Any]], str, str], None] | None = None,
                 replace: tuple[date, dict[str, str]] | None = None) -> None:
        self.writes, self.now = ViewWrites(session, keyspace), now
        self.on_rows, self.replace = on_rows, replace
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-view-writer")
        self._pending: list[Future[int]] = []
        self.written: dict[str, set[RowKey]] = {kind: set() for kind in ROW_KINDS}

    def write(self, view: DataFrame, granularity: str, kind: str, what: str) -> None:
        """Collect ``view`` and queue the upsert of its rows' ``kind`` columns."""
        t0 = time.perf_counter()
        rows = [r.asDict() for r in view.collect()]
        log.info("%s: %d rows computed in %.1fs", what, len(rows), time.perf_counter() - t0)
        if self.on_rows is not None:
            self.on_rows(rows, granularity, kind)
        self.written[kind].update(view_key(r, granularity) for r in rows)
        self._pending.append(self._pool.submit(self._upsert, rows, granularity, kind, what))

    def _upsert(self, rows: list[dict[str, Any]], granularity: str, kind: str, what: str) -> int:
        t0 = time.perf_counter()
        written = self.writes.write(BATCH_TABLE, kind, granularity, rows, self.now)
        log.info("%s: %d rows written in %.1fs", what, written, time.perf_counter() - t0)
        return written

    def __enter__(self) -> ViewWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._pool.shutdown(wait=True)
        failures = [f.exception() for f in self._pending if f.exception() is not None]
        if failures and exc_type is None:  # else the caller's own failure is the one to see
            raise failures[0]
        if exc_type is None and self.replace is not None and self._pending:
            day, sites = self.replace
            replace_rest(self.writes.session, self.writes.keyspace, day, sites, self.written, self.now)


# The measures a dry run reports: a day's site total of each (the sketch is not a measure).
DAY_MEASURES = tuple(c for c in EVENT_COLUMNS + SESSION_COLUMNS if c != "visitors_sketch")


class DayTotals:
    """A dry run's sink: of the frames a run would write, only each site's total row of the
    day (``day_starts``: each site's day bucket) is kept, as {site: {measure: value}}.
    Minute and hour frames are not computed at all."""

    def __init__(self, day_starts: dict[str, datetime]) -> None:
        self.day_starts = day_starts
        self.totals: dict[str, dict[str, int]] = {site: {} for site in day_starts}

    def write(self, view: DataFrame, granularity: str, kind: str, what: str) -> None:
        if granularity != "day":
            return
        t0 = time.perf_counter()
        columns = [c for c in DAY_MEASURES if c in view.columns]
        rows = view.where((F.col("view_name") == TRAFFIC_VIEW) & (F.col("dim") == TOTAL_DIM)).select(
            "site", "bucket", *columns).collect()
        for row in rows:
            # Session views hold the day before too (sessions still open at its run).
            if row["site"] in self.day_starts and as_utc(row["bucket"]) == self.day_starts[row["site"]]:
                self.totals[row["site"]].update({c: int(row[c] or 0) for c in columns})
        log.info("%s: site totals computed in %.1fs (dry run: nothing written)", what, time.perf_counter() - t0)

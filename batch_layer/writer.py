"""Batch view rows into Cassandra, written while Spark computes the next ones."""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from cassandra.cluster import Session
from pyspark.sql import DataFrame

from store.views import BATCH_TABLE, ViewWrites

log = logging.getLogger(__name__)


class ViewWriter:
    """Upserts view frames into the batch views: each frame is collected in the caller's
    thread and written by one background thread, so that Spark computes the next frame
    while Cassandra takes the last one. Leaving the ``with`` block waits for every write
    and raises the first failure (each write retries while Cassandra is away)."""

    def __init__(self, session: Session, keyspace: str, now: datetime) -> None:
        self.writes, self.now = ViewWrites(session, keyspace), now
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-view-writer")
        self._pending: list[Future[int]] = []

    def write(self, view: DataFrame, granularity: str, kind: str, what: str) -> None:
        """Collect ``view`` and queue the upsert of its rows' ``kind`` columns."""
        t0 = time.perf_counter()
        rows = [r.asDict() for r in view.collect()]
        log.info("%s: %d rows computed in %.1fs", what, len(rows), time.perf_counter() - t0)
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

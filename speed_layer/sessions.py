"""The sessions query's sink: each micro-batch of closed sessions -> what they add to the
running session sums of the minutes they started in (``speed_layer.session_sums``), and
those full values upserted into the minute rows of ``speed_views``."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from pyspark.sql import DataFrame

from speed_layer.session_sums import Key, minute_ranges, row_key, running_sums
from speed_layer.sinks import collect
from store.views import SPEED_TABLE, SessionSums, ViewWrites
from views.catalogue import SPEED_GRANULARITY, TRAFFIC_VIEW
from views.transforms import session_views

log = logging.getLogger(__name__)


class SpeedSessionSink:
    """foreachBatch sink of the sessions query: closed sessions -> session measures of the
    minutes they started in, in ``speed_views``. It waits for Cassandra for as long as it
    takes, or until ``stop`` is set (the micro-batch is then replayed at the next start)."""

    def __init__(self, sums: SessionSums, writes: ViewWrites, *, stop: threading.Event | None = None) -> None:
        self.sums, self.writes, self.stop = sums, writes, stop
        sums.prepare()  # now, while Cassandra answers (store.cql.Tables)
        writes.prepare(SPEED_TABLE, "session")

    def stored_sums(self, added: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
        """The running sums of the minutes ``added`` touches (and of those between them)."""
        out = {}
        for (site, period), (lo, hi) in minute_ranges(added).items():
            out.update((row_key(r), r) for r in self.sums.read(site, period, lo, hi + timedelta(minutes=1),
                                                                    stop=self.stop))
        return out

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        added = [r.asDict() for r in collect(session_views(batch_df, SPEED_GRANULARITY))]
        if not added:
            return
        # Spark's id of the query, kept in its checkpoint: a rebuilt checkpoint is another query.
        query_id = batch_df.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId") or ""
        sums = running_sums(added, self.stored_sums(added), query_id, batch_id)
        self.sums.write(sums, stop=self.stop)
        written = self.writes.write(SPEED_TABLE, "session", SPEED_GRANULARITY, sums, datetime.now(timezone.utc),
                                    attempts=None, stop=self.stop)
        log.info("sessions micro-batch %d: %d sessions closed; %d minute view rows updated", batch_id,
                 sum(r["sessions"] for r in added if r["view_name"] == TRAFFIC_VIEW), written)

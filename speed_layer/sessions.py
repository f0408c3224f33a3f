"""What the speed layer does with each micro-batch of closed sessions.

Spark's session windows only run in append mode on a stream: a session is emitted once,
when the watermark has passed its end. A minute bucket's session measures need every
session that started in it, and those close in different micro-batches. Every session
column is a sum over sessions (ratios divide sums after merging), so each micro-batch
computes what its sessions add to each minute with the same ``views.transforms.session_views``
the batch layer runs, in Spark, and adds that to the minute's running sums in
``speed_session_sums``. Each running sum records the micro-batch it includes
(``through_batch``, of the query ``query_id``): a replayed micro-batch finds its own
contribution already there and writes the same full values again instead of adding twice.
The sessions themselves never leave Spark.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from views.catalogue import MEASURES, SESSION_COLUMNS, SPEED_GRANULARITY, TRAFFIC_VIEW, period_key
from views.store import SPEED_TABLE, as_utc, retrying, upsert, upsert_cql, view_params, view_partition
from views.transforms import session_views

log = logging.getLogger(__name__)

SUMS_TABLE = "speed_session_sums"
# Adding a micro-batch's part to a minute's value is only right for columns that merge by
# summing: no session column may be a sketch.
assert not {m.column for m in MEASURES.values() if m.merge == "sketch"} & set(SESSION_COLUMNS)

Key = tuple[str, datetime, str, str]  # site, minute bucket (UTC), view_name, dim


def row_key(row: Mapping[str, Any]) -> Key:
    return row["site"], as_utc(row["bucket"]), row["view_name"], row["dim"]


def running_sums(added: Iterable[Mapping[str, Any]], stored: Mapping[Key, Mapping[str, Any]], query_id: str,
                 batch_id: int) -> list[dict[str, Any]]:
    """The full session measures of each (minute, view, dim) this micro-batch adds to.

    ``added``: this micro-batch's ``session_views`` rows. ``stored``: the running sums
    read before writing, with their ``query_id`` and ``through_batch``. A sum that
    already includes this micro-batch (a replay) is kept as it is; one of another query
    (an older checkpoint, rebuilt from Kafka) is started again from this query's sessions.
    """
    out = []
    for row in added:
        key = row_key(row)
        before = stored.get(key)
        ours = before is not None and before["query_id"] == query_id
        if ours and before["through_batch"] >= batch_id:  # a replay: this micro-batch is in already
            values, through = {c: before[c] for c in SESSION_COLUMNS}, before["through_batch"]
        elif ours:
            values, through = {c: before[c] + row[c] for c in SESSION_COLUMNS}, batch_id
        else:
            values, through = {c: row[c] for c in SESSION_COLUMNS}, batch_id
        out.append({"site": key[0], "bucket": key[1], "view_name": key[2], "dim": key[3], **values,
                    "query_id": query_id, "through_batch": through})
    return out


def minute_ranges(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[datetime, datetime]]:
    """(site, period) -> the first and last minute bucket of ``rows`` there."""
    out: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for row in rows:
        bucket = as_utc(row["bucket"])
        out[(row["site"], period_key(SPEED_GRANULARITY, bucket))].append(bucket)
    return {key: (min(buckets), max(buckets)) for key, buckets in out.items()}


class SpeedSessionSink:
    """foreachBatch sink of the sessions query: closed sessions -> session measures of the
    minutes they started in, in ``speed_views``."""

    def __init__(self, session: Any, keyspace: str) -> None:
        self.session = session
        cols = ("site", "period", "bucket", "view_name", "dim", *SESSION_COLUMNS, "query_id", "through_batch")
        self.insert = session.prepare(
            f"INSERT INTO {keyspace}.{SUMS_TABLE} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})")
        self.select = session.prepare(
            f"SELECT site, bucket, view_name, dim, {', '.join(SESSION_COLUMNS)}, query_id, through_batch "
            f"FROM {keyspace}.{SUMS_TABLE} WHERE site = ? AND period = ? AND bucket >= ? AND bucket < ?")
        self.upsert_views = session.prepare(upsert_cql(keyspace, SPEED_TABLE, "session"))

    def stored_sums(self, added: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
        """The running sums of the minutes ``added`` touches (and of those between them)."""
        out = {}
        for (site, period), (lo, hi) in minute_ranges(added).items():
            rows = retrying(lambda: list(self.session.execute(self.select, (site, period, lo,
                                                                            hi + timedelta(minutes=1)))),
                            "read of speed session sums", attempts=None)
            out.update((row_key(r._asdict()), r._asdict()) for r in rows)
        return out

    def __call__(self, batch_df: Any, batch_id: int) -> None:
        added = [r.asDict() for r in session_views(batch_df, SPEED_GRANULARITY).collect()]
        if not added:
            return
        # Spark's id of the query, kept in its checkpoint: a rebuilt checkpoint is another query.
        query_id = batch_df.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId") or ""
        sums = running_sums(added, self.stored_sums(added), query_id, batch_id)
        upsert(self.session, self.insert,
               ((r["site"], period_key(SPEED_GRANULARITY, r["bucket"]), r["bucket"], r["view_name"], r["dim"],
                 *(r[c] for c in SESSION_COLUMNS), r["query_id"], r["through_batch"]) for r in sums),
               attempts=None, partition_of=lambda params: params[:2])  # (site, period)
        now = datetime.now(timezone.utc)
        written = upsert(self.session, self.upsert_views,
                         (view_params(r, SPEED_GRANULARITY, now, "session") for r in sums), attempts=None,
                         partition_of=view_partition)
        log.info("sessions micro-batch %d: %d sessions closed; %d minute view rows updated", batch_id,
                 sum(r["sessions"] for r in added if r["view_name"] == TRAFFIC_VIEW), written)

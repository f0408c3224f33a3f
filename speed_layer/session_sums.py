"""The running session sums per minute: how the speed layer counts closed sessions once.

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

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from views.catalogue import MEASURES, SESSION_COLUMNS, SPEED_GRANULARITY, as_utc, period_key

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

"""Events as both layers read them: parsed from the enriched JSON, with their event time
and type code, and deduplicated by ``event_id``."""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from schemas import ENRICHED_EVENT_DDL, enriched_event_ddl

# What an event needs to be counted at all.
KEY_FIELDS = ("event_id", "site", "ts")


def event_ddl(fields: Sequence[str] | None = None) -> str:
    """The enriched event's DDL, or the part of it with ``fields`` (and the key fields)."""
    return ENRICHED_EVENT_DDL if fields is None else enriched_event_ddl({*fields, *KEY_FIELDS})


def parse_events(raw: DataFrame, value_col: str = "value", fields: Sequence[str] | None = None) -> DataFrame:
    """Kafka/JSON strings -> typed events with an ``event_time``; unparseable rows dropped.

    A poison message (not JSON, or missing its key fields) becomes a null row and is
    filtered out here, so it never stops a stream. ``fields`` parses only those fields
    (and the key fields): a query that needs few of them spends less on JSON.
    """
    event = F.from_json(F.col(value_col).cast("string"), event_ddl(fields))
    # The key check is part of the expression that parses: as a Filter after the parse,
    # Spark's optimizer pushes it below the parse, which then runs once per key field too.
    countable = F.filter(F.array(event), lambda e: e["event_id"].isNotNull() & e["site"].isNotNull()
                         & e["ts"].isNotNull())
    return with_event_time(raw.select(F.inline(countable)))


def with_event_time(events: DataFrame) -> DataFrame:
    """Event time from the tracker's epoch milliseconds."""
    return events.withColumn("event_time", F.timestamp_millis(F.col("ts")))


def dedupe_events(events: DataFrame, *, within_watermark: bool) -> DataFrame:
    """Drop repeated ``event_id``s (tracker retries, page-hide beacons): exactly in batch,
    within the watermark in a stream (the caller sets the watermark on ``event_time``).

    A stream keys its state on the id and the event time. A resent event is the same
    event, with the same time, so every copy meets the first in the state until the
    watermark passes that time, and after that a copy is dropped as late anyway: Spark can
    forget each id as soon as the watermark passes it. ``dropDuplicatesWithinWatermark``
    on the id alone would keep each id for another watermark's length, and every
    micro-batch scans the whole state to evict: twice the state, twice the scan. Two
    events that share an id but not a time (no tracker sends them) both count in the
    speed layer; the batch layer keeps the first.
    """
    if within_watermark:
        return events.dropDuplicates(["event_id", "event_time"])
    return events.dropDuplicates(["event_id"])


# The event types the counts tell apart, and the column coding them as a byte (1, 2, 3;
# 0 for any other type): an aggregation over many rows per event compares the code more
# cheaply than the type's string (``with_type_code``).
COUNTED_TYPES = ("pageview", "click", "impression")
TYPE_CODE = "_type_code"


def with_type_code(events: DataFrame) -> DataFrame:
    """``events`` with ``TYPE_CODE``, which ``with_view_keys`` carries instead of ``type``."""
    code = F.lit(0)
    for i, t in enumerate(COUNTED_TYPES, 1):
        code = F.when(F.col("type") == F.lit(t), F.lit(i)).otherwise(code)
    return events.withColumn(TYPE_CODE, code.cast("byte"))

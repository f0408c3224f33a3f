"""The speed layer's query frames: the deduplication on a real (file-sourced) stream, one
file per micro-batch -- resent events are dropped, and an id is forgotten as soon as the
watermark passes its time -- and the part of the event the sessions query parses."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from schemas import ENRICHED_EVENT_DDL, ENRICHED_EVENT_FIELDS
from speed_layer.queries import SESSION_FIELDS, deduped_stream
from views.transforms import event_ddl


def ms(clock: str) -> int:
    return int(datetime.fromisoformat(f"2026-11-21T{clock}").replace(tzinfo=timezone.utc).timestamp() * 1000)


def event(event_id: str, clock: str) -> str:
    return json.dumps({"event_id": event_id, "site": "a", "type": "pageview", "ts": ms(clock), "visitor_id": "v"})


# One list per micro-batch. The watermark is 10 minutes behind the latest event time seen
# before the micro-batch.
MICRO_BATCHES = [
    [event("e1", "10:00:00"), event("e1", "10:00:00"), event("e2", "10:00:30")],  # a retry in the same batch
    [event("e2", "10:00:30"), event("e3", "10:15:00")],  # a retry in a later batch; the watermark moves to 10:05
    [event("e1", "10:00:00"), event("e4", "10:15:30"), "not json"],  # met in the state, then e1 and e2 are forgotten
    [event("e2", "10:00:30")],  # a copy after its id is forgotten: behind the watermark, dropped as late
]


def test_speed_dedupe_drops_copies_and_forgets_ids_behind_the_watermark(spark, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for i, lines in enumerate(MICRO_BATCHES):
        path = source / f"{i}.json"
        path.write_text("\n".join(lines) + "\n")
        os.utime(path, (1_000_000 + i, 1_000_000 + i))  # the file source takes files by modification time
    raw = spark.readStream.format("text").option("maxFilesPerTrigger", 1).load(str(source))
    query = (deduped_stream(raw, "10 minutes").select("event_id").writeStream.format("memory")
             .queryName("speed_dedupe_test").outputMode("append")
             .option("checkpointLocation", str(tmp_path / "checkpoint")).trigger(availableNow=True).start())
    try:
        query.awaitTermination()
        kept = sorted(r.event_id for r in spark.table("speed_dedupe_test").collect())
        progress = [p for p in query.recentProgress if p["numInputRows"] or p["stateOperators"]]
    finally:
        query.stop()
        spark.catalog.dropTempView("speed_dedupe_test")

    assert kept == ["e1", "e2", "e3", "e4"]  # each event once; the copies and the poison line are gone
    dedupe = [op for p in progress for op in p["stateOperators"]]
    # The last copy of e2 comes after its id left the state: the watermark drops it.
    assert sum(op["numRowsDroppedByWatermark"] for op in dedupe) == 1
    # e1 and e2 (times 10:00:00 and 10:00:30) are forgotten once the watermark (10:05) passes
    # them, not a second watermark later: the state holds one watermark of ids.
    assert sum(op["numRowsRemoved"] for op in dedupe) == 2


def test_the_sessions_query_parses_a_part_of_the_event_schema():
    assert event_ddl(ENRICHED_EVENT_FIELDS) == ENRICHED_EVENT_DDL  # every field is found in the DDL
    names = [part.split(" ")[0] for part in event_ddl(SESSION_FIELDS).split(", ")]
    assert set(names) == {"event_id", "site", "ts", *SESSION_FIELDS}

"""The batch layer's deduplication: one row per event id with its number of copies, by the
listed-repeats path and by the shuffle-everything path alike."""
from __future__ import annotations

from batch_layer.days import COPIES, deduplicated
from views.transforms import with_event_time


def test_both_ways_of_deduplicating_keep_one_copy_of_each_event(spark):
    copies = {"a": 3, "b": 1, "c": 2, "d": 1}
    rows = [(event_id, "s", f"v-{event_id}", "pageview", 1_780_000_000_000 + i, "UTC")
            for i, (event_id, n) in enumerate(copies.items()) for _ in range(n)]
    events = with_event_time(spark.createDataFrame(
        rows, "event_id string, site string, visitor_id string, type string, ts long, timezone string"))

    def counted(frame):
        return sorted((r["event_id"], r["visitor_id"], r[COPIES]) for r in frame.collect())

    expected = sorted((e, f"v-{e}", n) for e, n in copies.items())
    assert counted(deduplicated(events)) == expected  # repeated ids listed and broadcast
    assert counted(deduplicated(events, max_listed=1)) == expected  # too many repeats: every event by its id
    assert counted(deduplicated(events.where("event_id in ('b', 'd')"))) == [("b", "v-b", 1), ("d", "v-d", 1)]

"""The batch job's view writer: writes overlap Spark's work, and none is lost or silent."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cassandra import InvalidRequest

from batch_layer.writer import ViewWriter
from views.transforms import views, with_event_time

UTC = timezone.utc


def _view(spark, site: str, minutes: int):
    rows = [(f"e{i}", site, "pageview", 1_780_000_000_000 + i * 60_000, f"v{i % 3}", "UTC") for i in range(minutes)]
    events = with_event_time(spark.createDataFrame(rows, "event_id string, site string, type string, ts long, "
                                                         "visitor_id string, timezone string"))
    return views(events, "minute", exact_visitors=True, breakdowns=False)


def test_every_queued_write_is_in_cassandra_when_the_block_ends(spark, cassandra, stack, new_site):
    site = new_site("writer")
    with ViewWriter(cassandra, stack.cassandra.keyspace, datetime.now(UTC)) as writer:
        writer.write(_view(spark, site, 5), "minute", "event", "first")
        writer.write(_view(spark, site, 8), "minute", "event", "second")
    rows = list(cassandra.execute(
        f"SELECT bucket, pageviews FROM {stack.cassandra.keyspace}.batch_views WHERE site = %s AND view_name = 'traffic' "
        "AND granularity = 'minute' AND period = %s", (site, "2026-05-28")))
    assert len(rows) == 8 and all(r.pageviews == 1 for r in rows)


def test_a_failed_write_fails_the_block(spark, cassandra, new_site):
    site = new_site("writer")
    with pytest.raises(InvalidRequest):
        with ViewWriter(cassandra, "no_such_keyspace", datetime.now(UTC)) as writer:
            writer.write(_view(spark, site, 2), "minute", "event", "doomed")

"""What the speed layer does with each micro-batch of changed view buckets: upsert them,
then publish the sites' totals on Kafka `metrics.live` for the live dashboards."""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from kafka import KafkaProducer
from pyspark.sql import DataFrame

from store.views import SPEED_TABLE, ViewWrites
from views.catalogue import SPEED_GRANULARITY, TRAFFIC_VIEW, as_utc

log = logging.getLogger(__name__)


def live_updates(rows: list[dict[str, Any]], batch_id: int) -> dict[str, dict[str, Any]]:
    """Changed buckets grouped per site: the messages for Kafka `metrics.live`."""
    per_site: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("view_name", TRAFFIC_VIEW) != TRAFFIC_VIEW:
            continue  # dashboards get the site totals live; breakdowns are in the reports
        per_site[row["site"]].append(
            {
                "start": as_utc(row["bucket"]).isoformat(),
                "pageviews": int(row["pageviews"]),
                "events": int(row["events"]),
                "visitors": int(row["visitors"]),
            }
        )
    return {
        site: {"site": site, "source": "speed", "granularity": SPEED_GRANULARITY, "batch_id": batch_id,
               "buckets": sorted(buckets, key=lambda b: b["start"])}
        for site, buckets in per_site.items()
    }


class SpeedViewSink:
    """foreachBatch sink: upsert the full value of every changed bucket, then publish them.

    A micro-batch replayed after a crash carries the same full values (Spark restores the
    aggregation state from its checkpoint), so writing it again changes nothing.
    """

    def __init__(self, writes: ViewWrites, producer: KafkaProducer, live_topic: str) -> None:
        """``producer`` serializes values to JSON (``infra.clients.json_bytes``)."""
        self.writes, self.producer, self.live_topic = writes, producer, live_topic
        writes.prepare(SPEED_TABLE, "event")  # now, while Cassandra answers (store.cql.Tables)

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        rows = [r.asDict() for r in batch_df.collect()]
        if not rows:
            return
        now = datetime.now(timezone.utc)
        # A stream has nothing better to do than wait for Cassandra: retry for as long as it takes.
        written = self.writes.write(SPEED_TABLE, "event", SPEED_GRANULARITY, rows, now, attempts=None)
        for site, message in live_updates(rows, batch_id).items():
            self.producer.send(self.live_topic, key=site.encode(), value=message)
        self.producer.flush(timeout=30)
        log.info("micro-batch %d: upserted %d speed rows (all views) for %d sites", batch_id, written,
                 len({r["site"] for r in rows}))

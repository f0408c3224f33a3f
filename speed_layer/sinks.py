"""What the speed layer does with each micro-batch of changed view buckets: upsert them,
then publish the sites' totals on Kafka `metrics.live` for the live dashboards."""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, Row

from store.views import SPEED_TABLE, ViewWrites
from views.catalogue import SPEED_GRANULARITY, TRAFFIC_VIEW, as_utc

log = logging.getLogger(__name__)

# How Spark recognises, in the error a foreachBatch function raised, that the query was
# stopped while the function was calling into Spark (StreamExecution.isInterruptionException):
# a regular expression that starts with this text and ends with the interruption's class.
_PY4J_ERROR = "py4j.protocol.Py4JJavaError: An error occurred while calling"
_INTERRUPTED = "java.lang.InterruptedException"
# What a sink's error says of the Java one at most (the full error goes to the log).
_ERROR_CHARS = 500


class SparkCallFailed(RuntimeError):
    """A sink's call into Spark failed; the message is short (see ``collect``)."""


def _java_error(exc: Py4JJavaError) -> str:
    try:
        return str(exc.java_exception.toString())
    except Exception:  # the JVM did not answer: what Py4J says of the call
        return exc.errmsg.strip()


def collect(frame: DataFrame) -> list[Row]:
    """``frame.collect()`` in a foreachBatch sink, its failure raised as a short error.

    Stopping a query (a restart with new goals, the job's own stop) interrupts its sink's
    call into Spark: a Py4J error whose text, the Python traceback and the whole Java
    stack trace, is about 10 KB. Spark tells a stop from a failure by matching that text
    with a regular expression that recurses once per character after its opening words
    (``(.|\\r\\n|\\r|\\n)*``): past about a thousand, the query's thread dies of a
    StackOverflowError instead of stopping (and a real failure loses its cause). So the
    sink raises the Java error's first words only: an interruption in the form Spark
    recognises as a stop, any other failure by its class and message (logged in full
    here), without the words Spark's expression starts with.
    """
    try:
        return frame.collect()
    except Py4JJavaError as exc:
        error = _java_error(exc)
    if error.startswith(_INTERRUPTED):
        raise SparkCallFailed(f"{_PY4J_ERROR} collectToPython: {_INTERRUPTED} (the query is stopping)")
    log.error("a micro-batch's collect failed in Spark: %s", error)
    raise SparkCallFailed(error[:_ERROR_CHARS].replace(_PY4J_ERROR, "Py4J:"))


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
    aggregation state from its checkpoint), so writing it again changes nothing. The writes
    wait for Cassandra for as long as it takes, or until ``stop`` is set (the micro-batch is
    then replayed at the next start). The live updates are published for as long as Kafka
    takes ``publish_timeout_s``: they only push values that are stored, and a Kafka outage
    must not stop the views (the stream reads nothing new meanwhile anyway).
    """

    def __init__(self, writes: ViewWrites, producer: KafkaProducer, live_topic: str, *,
                 stop: threading.Event | None = None, publish_timeout_s: float = 30.0) -> None:
        """``producer`` serializes values to JSON (``infra.clients.json_bytes``)."""
        self.writes, self.producer, self.live_topic = writes, producer, live_topic
        self.stop, self.publish_timeout_s = stop, publish_timeout_s
        writes.prepare(SPEED_TABLE, "event")  # now, while Cassandra answers (store.cql.Tables)

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        rows = [r.asDict() for r in collect(batch_df)]
        if not rows:
            return
        now = datetime.now(timezone.utc)
        # A stream has nothing better to do than wait for Cassandra: retry for as long as it takes.
        written = self.writes.write(SPEED_TABLE, "event", SPEED_GRANULARITY, rows, now, attempts=None,
                                    stop=self.stop)
        self.publish(rows, batch_id)
        log.info("micro-batch %d: upserted %d speed rows (all views) for %d sites", batch_id, written,
                 len({r["site"] for r in rows}))

    def publish(self, rows: list[dict[str, Any]], batch_id: int) -> None:
        """The micro-batch's live updates on `metrics.live`; while Kafka is away, a warning
        instead (what Kafka has not taken when it returns is sent then, or expires)."""
        try:
            for site, message in live_updates(rows, batch_id).items():
                self.producer.send(self.live_topic, key=site.encode(), value=message)
            self.producer.flush(timeout=self.publish_timeout_s)
        except KafkaError as exc:
            log.warning("micro-batch %d: live updates not published on %s (%s); the speed views are stored "
                        "all the same", batch_id, self.live_topic, exc)

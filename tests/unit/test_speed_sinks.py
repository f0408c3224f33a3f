"""The speed sinks' failures: a query stopped while its sink collects says so in the few
words Spark recognises as a stop (not ~10 KB that overflow the query thread's stack), a
Kafka outage does not fail a micro-batch whose views are stored, and a stopping job does
not wait for Cassandra."""
from __future__ import annotations

import re
import threading
import traceback
from datetime import datetime, timezone

import pytest
from kafka.errors import KafkaTimeoutError
from py4j.protocol import Py4JJavaError

from speed_layer.sinks import SparkCallFailed, SpeedViewSink, collect
from store.cql import retrying

# Spark's test of a foreachBatch error for a stop (StreamExecution.isInterruptionException,
# Spark 4.x), as its JVM runs it: a greedy loop that Java's regex engine recurses through once
# per character after the opening words, which overflows a thread's stack past about 1,000.
SPARK_STOP = re.compile(r"py4j.protocol.Py4JJavaError: An error occurred while calling((.|\r\n|\r|\n)*)"
                        r"(java.lang.InterruptedException|java.io.InterruptedIOException|"
                        r"java.nio.channels.ClosedByInterruptException)")
JAVA_TRACE = "".join(f"\tat org.apache.spark.Frame{i}.call(Frame.scala:{i})\n" for i in range(120))


class JavaError:
    """What Py4J hands Python of a Java exception."""

    _target_id = "o1"

    def __init__(self, text: str) -> None:
        self.text = text

    def toString(self) -> str:  # the Java method
        return self.text


class Frame:
    def __init__(self, error: str | None = None, rows: list | None = None) -> None:
        self.error, self.rows = error, rows or []

    def collect(self) -> list:
        if self.error is not None:
            raise Py4JJavaError("An error occurred while calling o1950.collectToPython.\n", JavaError(self.error))
        return self.rows


def what_spark_reads(call) -> str:
    """The error text a Python foreachBatch function hands back to the JVM (py4j's
    ``_call_proxy``: the formatted traceback)."""
    try:
        call()
    except Exception:
        return traceback.format_exc()
    raise AssertionError("no error")


def after_opening_words(text: str) -> str:
    return text.split("py4j.protocol.Py4JJavaError: An error occurred while calling", 1)[1]


def test_an_interrupted_collect_reads_as_a_stop_in_a_few_words():
    text = what_spark_reads(lambda: collect(Frame("java.lang.InterruptedException")))
    assert SPARK_STOP.search(text)
    assert len(after_opening_words(text)) < 200


def test_any_other_failure_keeps_its_cause_and_is_not_a_stop():
    error = "org.apache.spark.SparkException: Job aborted due to stage failure: boom\n" + JAVA_TRACE
    with pytest.raises(SparkCallFailed, match="Job aborted due to stage failure: boom"):
        collect(Frame(error))
    text = what_spark_reads(lambda: collect(Frame(error)))
    assert "py4j.protocol.Py4JJavaError: An error occurred while calling" not in text
    assert len(text) < 2_000


def test_rows_are_collected_as_they_are():
    assert collect(Frame(rows=[1, 2])) == [1, 2]


class Writes:
    def __init__(self) -> None:
        self.written: list = []

    def prepare(self, table: str, kind: str) -> None:
        pass

    def write(self, table, kind, granularity, rows, now, *, attempts, stop) -> int:
        self.written.extend(rows)
        return len(rows)


class KafkaAway:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, topic, key, value) -> None:
        self.sent.append(value)

    def flush(self, timeout: float) -> None:
        raise KafkaTimeoutError("Timeout waiting for future")


class Row(dict):
    def asDict(self) -> dict:  # as pyspark's Row
        return dict(self)


def test_a_kafka_outage_does_not_fail_a_micro_batch_whose_views_are_stored():
    writes, producer = Writes(), KafkaAway()
    sink = SpeedViewSink(writes, producer, "metrics.live", publish_timeout_s=0.1)
    row = Row(site="a", view_name="traffic", bucket=datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc),
              pageviews=2, events=3, visitors=1)
    sink(Frame(rows=[row]), 7)
    assert writes.written == [row] and producer.sent[0]["batch_id"] == 7


def test_a_stopping_job_does_not_wait_for_cassandra():
    stop, calls = threading.Event(), []

    def away() -> None:
        calls.append(1)
        if len(calls) == 2:
            stop.set()
        raise ConnectionError("Cassandra away")

    with pytest.raises(ConnectionError):
        retrying(away, "write", attempts=None, stop=stop)
    assert len(calls) == 2

"""The collector's way into Kafka: one librdkafka producer (``infra.clients`` says why this
client) per worker process, and a wait for each request's own acknowledgements.

Its delivery reports are served by one thread of ours (``poll``); each request hands its
records over with a callback of its own (``Acks``) and waits on it, so a request waits for
its records only, never for the other threads' (as ``flush`` would).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import msgspec
from confluent_kafka import Producer

from infra.clients import confluent_producer, json_bytes
from infra.settings import Settings

log = logging.getLogger(__name__)


def to_json(value: Any) -> bytes:
    """A record's JSON: msgspec, far cheaper than the json module (BENCHMARKS.md); the json
    module for what msgspec refuses (a rejected event kept as sent may hold an unpaired
    surrogate, which only an escape can carry)."""
    try:
        return msgspec.json.encode(value)
    except Exception:
        return json_bytes(value)


class Acks:
    """One request's delivery reports. Called by the sink's poll thread only (one thread:
    no lock needed for the count); the request thread waits on ``done``."""

    __slots__ = ("remaining", "error", "done")

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.error: Any = None
        self.done = threading.Event()

    def __call__(self, err: Any, _msg: Any) -> None:
        if err is not None and self.error is None:
            self.error = err
        self.remaining -= 1
        if self.remaining <= 0 or err is not None:  # one failure fails the request: no need to wait on
            self.done.set()


class SinkClosed(Exception):
    pass


class KafkaSink:
    """A confluent-kafka producer, the thread serving its delivery reports, and a clean
    retirement: ``retire`` purges what it still holds (the requests waiting on those
    records are answered at once, with the purge as their error) and closes it."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self._lock = threading.Lock()  # produce vs retire: nothing is handed to a closed producer
        self._retired = False
        self._poller = threading.Thread(target=self._serve, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    def send(self, records: list[tuple[str, bytes, bytes]]) -> Acks:
        """Hand the records to librdkafka; the returned ``Acks`` is done when Kafka has
        acknowledged every one (or one failed). Raises SinkClosed once retired, BufferError
        when librdkafka's queue is full."""
        acks = Acks(len(records))
        with self._lock:
            if self._retired:
                raise SinkClosed("producer retired")
            produce = self.producer.produce
            for topic, key, value in records:
                produce(topic, value, key, on_delivery=acks)
        return acks

    def retire(self) -> None:
        """No more records; the poll thread purges and closes the producer (within 0.2 s)."""
        with self._lock:
            self._retired = True

    def _serve(self) -> None:
        # poll() waits without the GIL and calls the Acks of the reports that came in.
        while not self._retired:
            self.producer.poll(0.2)
        try:
            self.producer.purge()  # queued and in-flight records fail now (their requests get 503)
            deadline = time.monotonic() + 5
            while len(self.producer) and time.monotonic() < deadline:
                self.producer.poll(0.05)
            self.producer.poll(0)
            self.producer.close()
        except Exception as exc:
            log.debug("closing a retired Kafka producer: %s", exc)


def connect(settings: Settings, timeout_s: float = 5.0) -> KafkaSink:
    """A sink whose producer reached Kafka (a metadata round trip), else an exception:
    while Kafka is away, creating one fails within ``timeout_s``."""
    ack_ms = int(settings.collector.kafka_ack_timeout_s * 1000)
    producer = confluent_producer(settings, **{
        "message.timeout.ms": ack_ms,  # a record not acknowledged by then fails: the request gets 503
        "request.timeout.ms": min(5000, ack_ms),
        # librdkafka would log every failed connection while Kafka is away; the collector
        # tells the operator itself (collector.resources.OutageLog).
        "log_level": 2,
        # A request waits this long at least, but librdkafka's broker thread wakes far less
        # often, for less CPU per request in the collector and in Kafka (BENCHMARKS.md).
        "linger.ms": 10,
    })
    try:
        producer.list_topics(timeout=timeout_s)
    except Exception:
        producer.close()
        raise
    return KafkaSink(producer)

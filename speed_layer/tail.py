"""The live tail: Kafka `events` counted as they arrive, the current minutes of each site
published on `metrics.live` every ``flush_s`` (200 ms), so that a dashboard shows an event
within a second of its 202, where the speed layer's micro-batches take seconds.

It counts with the catalogue's definitions (``views.live``) and keeps only the last three
minutes; the speed views replace its counts as they land (a dashboard shows, per minute,
the larger of the two: the tail is ahead, and the speed layer catches up). It reads every
partition itself and stores nothing: a restarted tail starts at the newest event, and the
minute it restarted in shows the speed views' counts. A message that is not an event is
skipped (and counted), never a reason to stop.

    .venv/bin/parallax tail          (`parallax speed` starts one beside its queries)
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime, timezone

import msgspec
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from infra.clients import json_bytes, kafka_producer
from infra.settings import Settings, load_settings
from views.live import LiveCounts

log = logging.getLogger(__name__)
SOURCE = "tail"


class TailEvent(msgspec.Struct):
    """The fields of an enriched event the tail counts with (the others are skipped)."""
    event_id: str
    site: str
    type: str
    ts: int
    visitor_id: str | None = None


_decode = msgspec.json.Decoder(TailEvent).decode


def run(settings: Settings, *, flush_s: float = 0.2, minutes: int = 3, stop: threading.Event | None = None) -> int:
    """Count and publish until ``stop`` (or SIGTERM/SIGINT)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    consumer = KafkaConsumer(settings.kafka.topic_events, bootstrap_servers=settings.kafka.servers,
                             auto_offset_reset="latest", enable_auto_commit=False, fetch_max_wait_ms=50,
                             client_id="parallax-tail")
    # A send waits at most 2 s for Kafka: while it is away, the tail keeps counting and
    # publishes again once it is back.
    producer = kafka_producer(settings, value_serializer=json_bytes, linger_ms=0, max_block_ms=2000)
    counts = LiveCounts(minutes)
    skipped = counted = 0
    unpublished_since: float | None = None
    last_flush = last_log = time.monotonic()
    log.info("live tail: counting %s, publishing the last %d minutes on %s every %.0f ms",
             settings.kafka.topic_events, minutes, settings.kafka.topic_live, flush_s * 1000)
    try:
        while not stop.is_set():
            now_ms = int(time.time() * 1000)
            for records in consumer.poll(timeout_ms=int(flush_s * 250), max_records=10_000).values():
                for record in records:
                    try:
                        e = _decode(record.value)
                    except (msgspec.DecodeError, TypeError):
                        skipped += 1
                        continue
                    counted += counts.add(e.site, e.event_id, e.type, e.ts, e.visitor_id, now_ms)
            if time.monotonic() - last_flush >= flush_s:
                last_flush = time.monotonic()
                at = datetime.now(timezone.utc).isoformat()
                changes = counts.changes()
                try:
                    for site, buckets in changes.items():
                        producer.send(settings.kafka.topic_live, key=site.encode(),
                                      value={"site": site, "source": SOURCE, "granularity": "minute",
                                             "buckets": buckets, "at": at})
                    producer.flush(timeout=5)
                    if unpublished_since is not None:
                        log.info("live tail: publishing again after %.0f s", time.monotonic() - unpublished_since)
                        unpublished_since = None
                except KafkaError as exc:
                    counts.again(changes)
                    if unpublished_since is None:
                        unpublished_since = time.monotonic()
                        log.warning("live tail: cannot publish on %s (%s); counting on, publishing when it is back",
                                    settings.kafka.topic_live, exc)
                counts.forget_before(now_ms)
            if time.monotonic() - last_log >= 60:
                log.info("live tail: %d events counted, %d messages skipped (not events) in the last minute",
                         counted, skipped)
                counted = skipped = 0
                last_log = time.monotonic()
    finally:
        consumer.close()
        try:
            producer.close(timeout=5)
        except KafkaError as exc:
            log.warning("live tail: the last counts were not published (%s)", exc)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    raise SystemExit(run(load_settings()))

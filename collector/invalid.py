"""`parallax invalid tail`: what went to Kafka `events.invalid`, one readable line per record.

The records hold whatever senders posted, hostile strings included: every field is printed
through ``_safe`` (JSON escapes), so no control character or terminal escape sequence in a
record reaches the operator's terminal.
"""
from __future__ import annotations

import heapq
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

# With a filter, look this far back for matching records (or n, if larger): the topic keeps
# 30 days, and reading all of it to find the last few of one site would take a while.
FILTER_SCAN = 10_000
EVENT_CHARS = 160


def _safe(text: str) -> str:
    """Printable: control characters (ANSI escapes included) and non-ASCII as JSON escapes."""
    return json.dumps(text)[1:-1]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def format_record(record: Any) -> str:
    """time, site, reason, errors, a truncated event."""
    if not isinstance(record, dict):
        return f"(not a record) {_clip(json.dumps(record), EVENT_CHARS)}"
    received = record.get("received_at")
    when = (datetime.fromtimestamp(received / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
            if isinstance(received, (int, float)) else "?")
    errors = "; ".join(_safe(str(e)) for e in record.get("errors") or [])
    event = _clip(json.dumps(record.get("event"), separators=(",", ":")), EVENT_CHARS)
    return (f"{when}  {_safe(str(record.get('site')))}  {_safe(str(record.get('reason')))}  "
            f"{_clip(errors, 300)}  {event}")


def matches(record: Any, site: str | None, reason: str | None) -> bool:
    return isinstance(record, dict) and site in (None, record.get("site")) and reason in (None, record.get("reason"))


def _decode(value: bytes) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value.decode("utf-8", "replace")


class InvalidTopic:
    """Kafka `events.invalid`, read with kafka-python from a point near its end."""

    def __init__(self, settings: Any) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), enable_auto_commit=False,
                                      client_id="parallax-invalid-tail")
        partitions = self.consumer.partitions_for_topic(settings.topic_invalid)
        if not partitions:
            self.consumer.close()
            raise RuntimeError(f"Kafka has no topic {settings.topic_invalid!r} (run `parallax stack up`)")
        self.parts = [TopicPartition(settings.topic_invalid, p) for p in sorted(partitions)]
        self.consumer.assign(self.parts)

    def last(self, back: int) -> list[tuple[int, Any]]:
        """The last ``back`` records of each partition, as (received_at, record), oldest first."""
        ends = self.consumer.end_offsets(self.parts)
        begins = self.consumer.beginning_offsets(self.parts)
        per_partition = []
        for tp in self.parts:
            start = max(begins[tp], ends[tp] - back)
            self.consumer.seek(tp, start)
            per_partition.append(self._read_until(tp, ends[tp]))
        return list(heapq.merge(*per_partition, key=lambda r: r[0]))

    def _read_until(self, tp: Any, end: int) -> list[tuple[int, Any]]:
        out: list[tuple[int, Any]] = []
        others = [p for p in self.parts if p != tp]
        self.consumer.pause(*others)
        try:
            while self.consumer.position(tp) < end:
                for batch in self.consumer.poll(timeout_ms=1000).values():
                    out.extend(_stamped(m.value) for m in batch)  # newer ones too: follow goes on after them
        finally:
            self.consumer.resume(*others)
        return out

    def follow(self) -> Iterator[Any]:
        """Records as they arrive, from where ``last`` stopped, until interrupted."""
        while True:
            for batch in self.consumer.poll(timeout_ms=1000).values():
                for m in batch:
                    yield _decode(m.value)

    def close(self) -> None:
        self.consumer.close()


def _stamped(value: bytes) -> tuple[int, Any]:
    record = _decode(value)
    received = record.get("received_at") if isinstance(record, dict) else None
    return (received if isinstance(received, int) else 0), record


def tail(settings: Any, echo: Callable[[str], None], *, site: str | None = None, reason: str | None = None,
         n: int = 20, follow: bool = False) -> int:
    """Print the last ``n`` records (that match), then, with ``follow``, new ones as they come.
    Returns how many were printed before following."""
    topic = InvalidTopic(settings)
    try:
        filtered = site is not None or reason is not None
        recent = topic.last(max(n, FILTER_SCAN) if filtered else n)
        shown: Iterable[Any] = deque((r for _, r in recent if matches(r, site, reason)), maxlen=n)
        count = 0
        for record in shown:
            echo(format_record(record))
            count += 1
        if follow:
            for record in topic.follow():
                if matches(record, site, reason):
                    echo(format_record(record))
        return count
    finally:
        topic.close()

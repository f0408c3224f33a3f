"""Test helpers: run Parallax's real processes (collector, speed layer, serving layer)."""
from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 120, interval: float = 1.0) -> T:
    """Poll ``fn`` until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as exc:  # a service still starting
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


class KafkaTail:
    """What arrives in a Kafka topic from the moment this is created (its end offsets then).

    ``read()`` returns everything up to the topic's end at the time of the call: what
    Kafka acknowledged is all there."""

    def __init__(self, settings: Any, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False)
        self.parts = [TopicPartition(topic, p) for p in self.consumer.partitions_for_topic(topic)]
        self.consumer.assign(self.parts)
        for tp, offset in self.consumer.end_offsets(self.parts).items():
            self.consumer.seek(tp, offset)
        self.raw: list[bytes] = []
        self.records: list[dict] = []

    def read(self) -> list[dict]:
        import json

        ends = self.consumer.end_offsets(self.parts)
        while any(self.consumer.position(tp) < end for tp, end in ends.items()):
            for batch in self.consumer.poll(timeout_ms=1000).values():
                self.raw.extend(m.value for m in batch)
                self.records.extend(json.loads(m.value) for m in batch)
        return self.records

    def of_sites(self, sites: set[str]) -> list[dict]:
        """The sites' records so far, repeated deliveries included, in arrival order."""
        return [r for r in self.read() if r.get("site") in sites]

    def of_site(self, site: str) -> list[dict]:
        return self.of_sites({site})

    def raw_of_site(self, site: str) -> list[tuple[dict, bytes]]:
        """The site's records with the bytes Kafka holds (to look for what must not be there)."""
        self.read()
        return [(r, raw) for r, raw in zip(self.records, self.raw) if r.get("site") == site]

    def close(self) -> None:
        self.consumer.close()

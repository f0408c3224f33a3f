"""How fresh the numbers are, shown with every report and pushed to every dashboard: the
site's batch boundary (what is final) and its gaps (days no batch run computed, which hold
the boundary), the newest event time the speed layer has processed, how far it is behind
Kafka (records, and the age of the oldest record it has not read), and whether it is
stalled (behind, and its offsets have not moved for ``stall_after_s``).

Each serving process measures it at most every ``refresh_s`` seconds (one read of the
speed layer's progress row, Kafka's end offsets, and the first unread record of each
partition behind), so that answering it costs a report nothing.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from infra.settings import Settings
from store.diagnostics import Diagnostics, QueryProgress

log = logging.getLogger(__name__)
VIEWS_QUERY = "speed_views"  # the query whose views the reports and dashboards read
SESSIONS_QUERY = "speed_sessions"  # the query whose session sums they read


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


@dataclass(frozen=True)
class SpeedFreshness:
    processed_through: datetime | None
    lag_records: int | None
    lag_seconds: float | None
    stalled: bool
    stalled_since: datetime | None
    last_progress: datetime | None
    last_report: datetime | None
    measured_at: datetime
    problem: str | None = None
    # The speed queries' last micro-batches that read events, and when they were recorded:
    # the speed views change only when these do (the time tells apart two runs of the speed
    # layer whose checkpoints numbered their batches alike, e.g. after a checkpoint reset).
    version: tuple[Any, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"processed_through": _iso(self.processed_through), "lag_records": self.lag_records,
                "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
                "stalled": self.stalled, "stalled_since": _iso(self.stalled_since),
                "last_progress": _iso(self.last_progress), "last_report": _iso(self.last_report),
                "measured_at": self.measured_at.isoformat(), "problem": self.problem}


def lag_of(progress: QueryProgress | None, topic: str, ends: dict[int, int], beginnings: dict[int, int]
           ) -> dict[int, int]:
    """Per partition, the first offset the query has not read, where it is behind."""
    read = progress.offsets.get(topic, {}) if progress else {}
    behind = {}
    for partition, end in ends.items():
        position = max(read.get(partition, 0), beginnings.get(partition, 0))
        if end > position:
            behind[partition] = position
    return behind


def stalled_since(progress: QueryProgress | None, behind: bool, now: datetime, stall_after_s: float,
                  oldest_unread: datetime | None = None) -> datetime | None:
    """Since when the query has been waited for: behind, and no progress for
    ``stall_after_s`` since the later of its last progress and the arrival of the oldest
    record it has not read (a query that was idle has not stalled before events came)."""
    if not behind:
        return None
    last = progress.progressed_at if progress else None
    waiting = max((t for t in (last, oldest_unread) if t is not None), default=None)
    if waiting is None or (now - waiting).total_seconds() >= stall_after_s:
        return waiting or now
    return None


class FreshnessMonitor:
    def __init__(self, settings: Settings, diagnostics: Callable[[], Diagnostics]) -> None:
        self.settings, self._diagnostics = settings, diagnostics
        self.refresh_s, self.stall_after_s = settings.serving.freshness_refresh_s, settings.serving.stall_after_s
        self._lock = threading.Lock()
        self._consumer: KafkaConsumer | None = None
        self._last: SpeedFreshness | None = None
        self._measuring = False

    def speed(self) -> SpeedFreshness:
        """The speed layer's freshness, as last measured: a measurement older than
        ``refresh_s`` starts a new one in the background (a request never waits on Kafka),
        but for the first, which is taken there and then."""
        with self._lock:
            last = self._last
            stale = last is None or (datetime.now(timezone.utc) - last.measured_at).total_seconds() >= self.refresh_s
            start = stale and not self._measuring
            if start:
                self._measuring = True
        if last is None:
            self._refresh()
            return self._last  # type: ignore[return-value]
        if start:
            threading.Thread(target=self._refresh, daemon=True, name="freshness").start()
        return last

    def measure_now(self) -> SpeedFreshness:
        """Measured now, whatever the last measurement's age (the system alarms' check)."""
        measured = self._measure(datetime.now(timezone.utc))
        with self._lock:
            self._last = measured
        return measured

    def _refresh(self) -> None:
        try:
            measured = self._measure(datetime.now(timezone.utc))
            with self._lock:
                self._last = measured
        finally:
            with self._lock:
                self._measuring = False

    def _measure(self, now: datetime) -> SpeedFreshness:
        progress = None
        oldest: datetime | None = None
        version: tuple[Any, ...] = ()
        try:
            diagnostics = self._diagnostics()
            progress = diagnostics.progress(VIEWS_QUERY)
            sessions = diagnostics.progress(SESSIONS_QUERY)
            version = tuple((p.batch_id, p.progressed_at) if p else None for p in (progress, sessions))
            topic = self.settings.kafka.topic_events
            consumer = self._kafka()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            ends = {tp.partition: o for tp, o in consumer.end_offsets(partitions).items()}
            beginnings = {tp.partition: o for tp, o in consumer.beginning_offsets(partitions).items()}
            behind = lag_of(progress, topic, ends, beginnings)
            lag_records = sum(ends[p] - o for p, o in behind.items())
            oldest = self._oldest_unread(topic, behind)
            lag_seconds = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
            problem = None
        except Exception as exc:  # Kafka or Cassandra away: say so; the report still answers
            log.warning("could not measure the speed layer's freshness: %s", exc)
            self._close()
            behind, lag_records, lag_seconds, problem = {}, None, None, f"cannot measure: {exc}"
        since = stalled_since(progress, bool(behind), now, self.stall_after_s, oldest)
        return SpeedFreshness(progress.newest_event if progress else None, lag_records, lag_seconds,
                              since is not None, since, progress.progressed_at if progress else None,
                              progress.heartbeat_at if progress else None, now, problem, version)

    def _kafka(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka.servers, enable_auto_commit=False,
                                           client_id="parallax-serving-freshness", request_timeout_ms=5000)
        return self._consumer

    def _oldest_unread(self, topic: str, behind: dict[int, int]) -> datetime | None:
        """The append time of the oldest record the query has not read."""
        if not behind:
            return None
        consumer = self._kafka()
        tps = [TopicPartition(topic, p) for p in behind]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, behind[tp.partition])
        stamps: dict[int, int] = {}
        deadline = time.monotonic() + 2.0
        while len(stamps) < len(tps) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200, max_records=len(tps)).items():
                if records and tp.partition not in stamps:
                    stamps[tp.partition] = records[0].timestamp
                    consumer.pause(tp)
        consumer.resume(*tps)
        return datetime.fromtimestamp(min(stamps.values()) / 1000, timezone.utc) if stamps else None

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:  # closing a consumer whose broker is gone
                pass
            self._consumer = None


def freshness(boundary: datetime | None, speed: SpeedFreshness, zone: Any, gaps: Iterable[date] = ()
              ) -> dict[str, Any]:
    """What a report says of its freshness: the site's boundary, its gaps (days not computed
    by the batch layer that hold the boundary) and the speed layer's state."""
    return {"batch_boundary": boundary.astimezone(zone).isoformat() if boundary else None,
            "batch_gaps": [d.isoformat() for d in gaps], "speed": speed.as_dict()}

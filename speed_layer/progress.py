"""What the speed layer records of its queries' progress (``store.diagnostics``): how far
each query has got in Kafka and in event time, which the serving layer shows as the
freshness of every report; and the events each micro-batch dropped behind the watermark
(the batch layer counts them)."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

from store.diagnostics import Diagnostics

log = logging.getLogger(__name__)


def _instant(value: str | None) -> datetime | None:
    """Spark's progress timestamps ("2026-12-02T15:04:05.123Z")."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def kafka_offsets(sources: list[Any]) -> dict[str, dict[int, int]]:
    """The Kafka offsets a micro-batch read up to, from its sources' ``endOffset`` JSON."""
    out: dict[str, dict[int, int]] = {}
    for source in sources:
        try:
            end = json.loads(source.endOffset or "{}")
        except (TypeError, ValueError):
            continue
        for topic, parts in end.items() if isinstance(end, dict) else ():
            if isinstance(parts, dict):
                out.setdefault(topic, {}).update({int(p): int(o) for p, o in parts.items()})
    return out


class ProgressListener(StreamingQueryListener):
    """Records every micro-batch's progress, and its events dropped behind the watermark."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        self.diagnostics = diagnostics
        self._newest: dict[str, datetime] = {}  # per query: event time only moves forward
        self._names: dict[str, str] = {}  # query id -> name (an idle event names only the id)

    def onQueryStarted(self, event: Any) -> None:
        self._names[str(event.id)] = event.name

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        now = datetime.now(timezone.utc)
        try:
            self._record(progress, now)
        except Exception as exc:  # progress is a diagnostic: never let it stop the stream
            log.warning("could not record the progress of %s: %s", progress.name, exc)

    def _record(self, progress: Any, now: datetime) -> None:
        dropped = sum(op.numRowsDroppedByWatermark for op in progress.stateOperators)
        if dropped:
            log.warning("%s micro-batch %d dropped %d events behind the watermark (left to the batch layer)",
                        progress.name, progress.batchId, dropped)
            self.diagnostics.record_dropped(progress.name, str(progress.id), progress.batchId, dropped, now)
        if not progress.numInputRows:
            self.diagnostics.heartbeat(progress.name, now)
            return
        times = progress.eventTime or {}
        newest = max(filter(None, (_instant(times.get("max")), self._newest.get(progress.name))), default=None)
        if newest is not None:
            self._newest[progress.name] = newest
        self.diagnostics.record_progress(progress.name, str(progress.id), progress.batchId,
                                         kafka_offsets(progress.sources), newest, _instant(times.get("watermark")),
                                         progress.numInputRows, now)

    def onQueryIdle(self, event: Any) -> None:
        name = self._names.get(str(event.id))
        if name is None:
            return
        try:
            self.diagnostics.heartbeat(name, datetime.now(timezone.utc))
        except Exception as exc:
            log.warning("could not record the heartbeat of %s: %s", name, exc)

    def onQueryTerminated(self, event: Any) -> None:
        pass

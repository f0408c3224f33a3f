"""Whether the master dataset holds every event that reached Kafka before an instant: the
nightly run computes a day only once the archive query has committed (its recorded
progress, ``store.diagnostics``) every `events` record Kafka received before the day's end
plus the grace. No sleep stands in for it: a speed layer that is down or behind holds the
run until it has caught up (the DAG's sensor waits, then fails and alerts)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from infra.clients import TopicReader
from store.diagnostics import Diagnostics

ARCHIVE_QUERY = "archive"


@dataclass(frozen=True)
class Coverage:
    until: datetime
    needed: dict[int, int]  # per partition: the archive must have read up to this offset
    archived: dict[int, int]  # per partition: where the archive query has committed to

    @property
    def complete(self) -> bool:
        return all(self.archived.get(p, 0) >= offset for p, offset in self.needed.items())

    def describe(self) -> str:
        behind = {p: n - self.archived.get(p, 0) for p, n in self.needed.items() if self.archived.get(p, 0) < n}
        if not behind:
            return f"the archive holds every event Kafka received before {self.until.isoformat()}"
        return (f"the archive is {sum(behind.values()):,} events short of what Kafka received before "
                f"{self.until.isoformat()} (per partition: {behind})")


def coverage(reader: TopicReader, diagnostics: Diagnostics, until: datetime) -> Coverage:
    """How far the archive query has committed, against what Kafka received before ``until``.
    A partition the archive never read counts from its first retained offset."""
    needed = reader.first_offsets_from(until)
    progress = diagnostics.progress(ARCHIVE_QUERY)
    committed = progress.offsets.get(reader.topic, {}) if progress is not None else {}
    beginnings = reader.beginning_offsets()
    return Coverage(until, needed, {p: committed.get(p, beginnings.get(p, 0)) for p in needed})

"""When the speed layer counts as stalled: behind Kafka, and no progress for the configured
time since the later of its last progress and the arrival of what it has not read."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from serving_layer.freshness import stalled_since
from store.diagnostics import QueryProgress

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)


def _progress(ago_s: float) -> QueryProgress:
    at = NOW - timedelta(seconds=ago_s)
    return QueryProgress("speed_views", 7, {"events": {0: 10}}, at, at, at, at)


def test_not_behind_is_never_stalled():
    assert stalled_since(_progress(3600), False, NOW, 60, NOW - timedelta(hours=1)) is None


def test_behind_and_unmoved_since_the_events_came():
    came = NOW - timedelta(seconds=90)
    assert stalled_since(_progress(120), True, NOW, 60, came) == came


def test_idle_before_the_events_came_is_not_stalled_yet():
    # Its last progress is an hour old, but the events it has not read arrived 10 s ago.
    assert stalled_since(_progress(3600), True, NOW, 60, NOW - timedelta(seconds=10)) is None


def test_without_the_arrival_time_its_last_progress_counts():
    assert stalled_since(_progress(120), True, NOW, 60) == NOW - timedelta(seconds=120)
    assert stalled_since(None, True, NOW, 60) == NOW

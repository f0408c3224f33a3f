"""The drift record: the speed layer's minutes of a day against the batch layer's."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from batch_layer.drift import VISITORS, compare

T0 = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)


def _by_measure(drifts):
    return {d.measure: d for d in drifts}


def test_equal_minutes_have_no_drift():
    rows = {T0: {"pageviews": 3, "events": 5, "visitors": 2}, T0 + timedelta(minutes=1): {"pageviews": 1}}
    drift = _by_measure(compare(rows, rows, 2, 2))
    assert drift["pageviews"].speed == drift["pageviews"].batch == 4
    assert all(d.difference == 0 and d.minutes_differing == 0 for d in drift.values())
    assert drift["sessions"].speed == 0 and drift["sessions"].relative is None


def test_a_dropped_event_and_a_missing_minute_show():
    speed = {T0: {"pageviews": 3, "events": 4, "visitors": 2}}
    batch = {T0: {"pageviews": 3, "events": 5, "visitors": 2},
             T0 + timedelta(minutes=7): {"pageviews": 2, "events": 2, "visitors": 1}}
    drift = _by_measure(compare(speed, batch, speed_visitors=2, batch_visitors=3))
    assert (drift["pageviews"].difference, drift["pageviews"].minutes_differing) == (-2, 1)
    assert (drift["events"].difference, drift["events"].minutes_differing) == (-3, 2)
    assert drift["events"].relative == pytest.approx(-3 / 7)
    assert (drift[VISITORS].speed, drift[VISITORS].batch, drift[VISITORS].minutes_differing) == (2, 3, 1)
    assert (drift["pageviews"].speed_minutes, drift["pageviews"].batch_minutes) == (1, 2)

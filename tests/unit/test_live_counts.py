"""The live tail's counts on tiny inputs: the catalogue's counts per minute, each event
once, the last minutes only, and what changed since the last look."""
from __future__ import annotations

from views.catalogue import EVENT_COUNTS
from views.live import MINUTE_MS, LiveCounts

NOW = 1_780_000_000_000 - 1_780_000_000_000 % MINUTE_MS + 30_000  # half a minute into a minute


def test_counts_per_minute_with_the_catalogues_definitions():
    counts = LiveCounts(minutes=3)
    events = [("e1", "pageview", NOW - 1000, "a"), ("e2", "pageview", NOW - 2000, "b"), ("e3", "click", NOW, "a"),
              ("e4", "custom", NOW, "c"), ("e1", "pageview", NOW - 1000, "a"),  # a resent copy: once
              ("e5", "impression", NOW - MINUTE_MS, "a")]
    assert [counts.add("s", i, k, t, v, NOW) for i, k, t, v in events] == [True, True, True, True, False, True]
    changes = counts.changes()
    assert [b["start"] for b in changes["s"]] == sorted(b["start"] for b in changes["s"])
    previous, current = changes["s"]
    assert current == {"start": current["start"], "pageviews": 2, "events": 4, "clicks": 1, "impressions": 0,
                       "visitors": 3}
    assert previous["impressions"] == 1 and previous["events"] == 1 and previous["visitors"] == 1
    assert set(current) == {"start", "visitors", *EVENT_COUNTS}


def test_only_the_last_minutes_and_only_what_changed():
    counts = LiveCounts(minutes=2)
    assert not counts.add("s", "old", "pageview", NOW - 2 * MINUTE_MS, "a", NOW)  # before the window
    assert not counts.add("s", "ahead", "pageview", NOW + 3 * MINUTE_MS, "a", NOW)  # a clock far ahead
    assert counts.add("s", "x", "pageview", NOW, "a", NOW) and counts.add("t", "y", "pageview", NOW, "b", NOW)
    assert set(counts.changes()) == {"s", "t"}
    assert counts.changes() == {}  # nothing new
    counts.add("t", "z", "pageview", NOW, "b", NOW)
    assert list(counts.changes()) == ["t"]
    later = NOW + 2 * MINUTE_MS
    counts.forget_before(later)
    assert counts.add("s", "x", "pageview", later, "a", later)  # the old minute is gone: its ids too
    assert counts.changes()["s"][0]["events"] == 1


def test_changes_not_published_come_again_with_their_values_then():
    counts = LiveCounts(minutes=3)
    counts.add("s", "e1", "pageview", NOW, "a", NOW)
    counts.add("s", "e0", "pageview", NOW - 3 * MINUTE_MS, "a", NOW + 3 * MINUTE_MS)  # too old by then: not kept
    failed = counts.changes()
    assert counts.changes() == {}
    counts.add("s", "e2", "pageview", NOW, "b", NOW)  # counted meanwhile
    counts.again(failed)
    (bucket,) = counts.changes()["s"]
    assert bucket["pageviews"] == 2 and bucket["visitors"] == 2
    counts.forget_before(NOW + 5 * MINUTE_MS)
    counts.again(failed)  # a minute no longer kept is not sent again
    assert counts.changes() == {}

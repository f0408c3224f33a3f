"""The sessions sink's running sums per minute: what each micro-batch adds, counted once
even when a micro-batch is replayed, and started again by a rebuilt query."""
from __future__ import annotations

from datetime import datetime, timezone

from speed_layer.session_sums import row_key, running_sums

UTC = timezone.utc
MINUTE = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def part(sessions: int, bounces: int, duration_ms: int, pageviews: int, dim: str = "") -> dict:
    return {"site": "a", "bucket": MINUTE.replace(tzinfo=None), "view_name": "traffic" if not dim else "entry_page",
            "dim": dim, "sessions": sessions, "bounces": bounces, "duration_ms": duration_ms,
            "session_pageviews": pageviews}


def stored(rows: list[dict]) -> dict:
    return {row_key(r): r for r in rows}


def values(row: dict) -> tuple:
    return row["sessions"], row["bounces"], row["duration_ms"], row["session_pageviews"]


def test_each_micro_batch_adds_what_its_sessions_bring():
    first = running_sums([part(2, 1, 60_000, 4)], {}, "q", 0)
    assert values(first[0]) == (2, 1, 60_000, 4) and first[0]["through_batch"] == 0
    second = running_sums([part(1, 1, 0, 1), part(1, 0, 5_000, 2, "/pricing")], stored(first), "q", 3)
    assert [values(r) for r in second] == [(3, 2, 60_000, 5), (1, 0, 5_000, 2)]
    assert {r["through_batch"] for r in second} == {3}


def test_a_replayed_micro_batch_is_not_added_twice():
    first = running_sums([part(2, 1, 60_000, 4)], {}, "q", 0)
    second = running_sums([part(1, 1, 0, 1)], stored(first), "q", 1)
    # The driver died after writing micro-batch 1's sums; Spark runs micro-batch 1 again.
    replay = running_sums([part(1, 1, 0, 1)], stored(second), "q", 1)
    assert replay == second


def test_a_rebuilt_query_starts_the_sums_again():
    old = running_sums([part(2, 1, 60_000, 4)], {}, "old-query", 7)
    rebuilt = running_sums([part(2, 1, 60_000, 4)], stored(old), "new-query", 0)
    assert values(rebuilt[0]) == (2, 1, 60_000, 4) and rebuilt[0]["query_id"] == "new-query"

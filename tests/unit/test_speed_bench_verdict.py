"""The speed bench's verdict: ids held from the progress, and the rate once the state is full."""
from __future__ import annotations

from bench.speed_verdict import first_full, full_state_rate, ids_held, interval_seconds, sessions_closed


def progress(added: int, removed: int) -> dict:
    return {"stateOperators": [{"operatorName": "stateStoreSave", "numRowsUpdated": 999, "numRowsRemoved": 0},
                               {"operatorName": "dedupe", "numRowsUpdated": added, "numRowsRemoved": removed}]}


def test_ids_held_counts_only_the_dedupe():
    assert ids_held([progress(100, 0), progress(100, 20), progress(100, 100)]) == [100, 180, 180]


def test_full_state_rate_is_taken_after_the_state_fills():
    rows = [100, 100, 100, 100, 100, 50]
    ends = [1.0, 2.0, 3.0, 5.0, 7.0, 8.0]  # micro-batches slow down from the fourth on
    assert full_state_rate(rows, ends, 3) == round(250 / (8.0 - 3.0))
    assert full_state_rate(rows, ends, 4) is None  # two full micro-batches cannot tell
    assert full_state_rate(rows, ends[:-1], 3) is None  # rows and ends must match


def test_interval_seconds_reads_spark_intervals():
    assert interval_seconds("10 minutes") == 600 and interval_seconds("1 hour") == 3600


def test_sessions_closed_counts_only_the_session_window():
    def batch(removed: int) -> dict:
        return {"stateOperators": [{"operatorName": "sessionWindowStateStoreSaveExec", "numRowsRemoved": removed},
                                   {"operatorName": "dedupe", "numRowsRemoved": 500}]}
    assert sessions_closed([batch(0), batch(7)]) == [0, 7]


def test_first_full_is_the_micro_batch_after_the_level_is_reached():
    assert first_full([10, 80, 95, 100], 90) == 3
    assert first_full([10, 20], 90) == 2  # never: no full micro-batch

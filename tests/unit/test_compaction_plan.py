"""The compaction's plan (which partitions a scheduled run compacts), its arguments, the
files of each partition as the table's log lists them, and its settings."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from batch_layer.compact import Files, choose, parse_args, partition_files
from infra.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]
D = [date(2026, 12, d) for d in range(1, 9)]


def test_a_scheduled_run_compacts_the_days_over_the_threshold_before_its_own_newest_first():
    partitions = {D[0]: Files(500, 1), D[1]: Files(100, 1), D[2]: Files(101, 1), D[3]: Files(3, 1),
                  D[4]: Files(900, 1), D[5]: Files(2000, 1)}
    # D[5] is the run's own day: still being written. D[1] is at the threshold, not over it.
    assert choose(partitions, before=D[5], min_files=100, max_days=7) == ([D[4], D[2], D[0]], [])


def test_at_most_max_days_a_run_the_oldest_wait():
    partitions = {d: Files(200, 1) for d in D}
    assert choose(partitions, before=D[7], min_files=100, max_days=3) == ([D[6], D[5], D[4]], [D[3], D[2], D[1], D[0]])
    assert choose({}, before=D[7], min_files=100, max_days=3) == ([], [])


@pytest.mark.parametrize("argv, day, before", [
    (["--day=2026-12-01"], date(2026, 12, 1), None),
    (["--before=2026-12-08"], None, date(2026, 12, 8)),
    (["", "--before", "2026-12-08"], None, date(2026, 12, 8)),  # an empty templated argument is dropped
    ([], None, None),
])
def test_arguments(argv, day, before):
    args = parse_args(argv)
    assert (args.day, args.before) == (day, before)


def test_day_and_before_exclude_each_other():
    with pytest.raises(SystemExit):
        parse_args(["--day=2026-12-01", "--before=2026-12-08"])


def test_partition_files_are_read_from_the_log(tmp_path: Path):
    table = str(tmp_path / "events")
    for days in ([D[0], D[0], D[1]], [D[0]]):  # two commits: D[0] gets a file in each, D[1] one
        write_deltalake(table, pa.table({"event_id": [str(i) for i in range(len(days))], "date": days}),
                        mode="append", partition_by=["date"])
    files = partition_files(table)
    assert set(files) == {D[0], D[1]} and files[D[0]].count == 2 and files[D[1]].count == 1
    assert all(f.size > 0 for f in files.values())
    assert partition_files(table, version=0)[D[0]].count == 1
    assert str(Files(1, 3 * 2**20)) == "1 file (3.0 MiB)" and str(Files(2_000, 0)) == "2,000 files (0.0 MiB)"


def test_vacuum_retention_is_the_events_topics_and_never_under_a_week(monkeypatch):
    topics = json.loads((REPO / "schemas" / "topics.json").read_text())
    retention_ms = int(topics["events"]["config"]["retention.ms"])
    assert load_settings().compaction.vacuum_retention_hours * 3_600_000 == retention_ms
    monkeypatch.setenv("PARALLAX_COMPACTION_VACUUM_RETENTION_HOURS", "24")
    with pytest.raises(SettingsError, match="PARALLAX_COMPACTION_VACUUM_RETENTION_HOURS='24'"):
        load_settings()

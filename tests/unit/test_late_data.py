"""Finding late data from the master dataset's commit log (``batch_layer.late_data``): which
commits add events, and which of their files can reach into a computed site-day."""
from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta

from batch_layer.late_data import Appended, appended_files, candidates
from store.late_events import DayRun
from views.catalogue import local_day_bounds


def commit(log_dir, version: int, operation: str, files: list[tuple[str, str, str]], ts_ms: int = 1_796_000_000_000):
    lines = [{"commitInfo": {"timestamp": ts_ms, "operation": operation}}]
    for path, first, last in files:
        stats = {"numRecords": 3, "minValues": {"event_time": first}, "maxValues": {"event_time": last}}
        lines.append({"add": {"path": path, "partitionValues": {"date": first[:10]}, "dataChange": True,
                              "stats": json.dumps(stats)}})
    (log_dir / f"{version:020}.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_only_appends_add_new_events(tmp_path):
    log_dir = tmp_path / "_delta_log"
    log_dir.mkdir()
    commit(log_dir, 1, "STREAMING UPDATE", [("date=2026-11-02/a.parquet", "2026-11-02T09:00:00.000Z",
                                             "2026-11-02T09:05:00.000Z")])
    commit(log_dir, 2, "OPTIMIZE", [("date=2026-11-02/b.parquet", "2026-11-02T00:00:00.000Z",
                                     "2026-11-02T23:00:00.000Z")])
    commit(log_dir, 3, "DELETE", [("date=2026-11-02/c.parquet", "2026-11-02T00:00:00.000Z",
                                   "2026-11-02T23:00:00.000Z")])
    commit(log_dir, 4, "WRITE", [("date=2026-11-01/d.parquet", "2026-11-01T23:50:00.000Z",
                                  "2026-11-01T23:59:00.000Z")])
    files = appended_files(tmp_path, 1, 5)  # version 5 is not there (yet): skipped
    assert [(f.version, f.path.name) for f in files] == [(1, "a.parquet"), (4, "d.parquet")]
    assert files[0].first_event == datetime(2026, 11, 2, 9, tzinfo=UTC)


def test_a_file_is_a_candidate_for_a_site_day_its_run_did_not_read(tmp_path):
    log_dir = tmp_path / "_delta_log"
    log_dir.mkdir()
    commit(log_dir, 7, "STREAMING UPDATE", [("date=2026-11-01/late.parquet", "2026-11-01T23:50:00.000Z",
                                             "2026-11-01T23:59:00.000Z")])
    files = appended_files(tmp_path, 7, 7)
    # In Tokyo those minutes are the morning of 2 November; in UTC, the end of the 1st.
    zones = {"tokyo": "Asia/Tokyo", "utc": "UTC"}
    read_before = DayRun(6, None)
    assert candidates(files, {("tokyo", date(2026, 11, 2)): read_before}, zones) == files
    assert candidates(files, {("tokyo", date(2026, 11, 1)): read_before}, zones) == []
    assert candidates(files, {("utc", date(2026, 11, 1)): read_before}, zones) == files
    assert candidates(files, {("utc", date(2026, 11, 1)): DayRun(7, None)}, zones) == []  # the run read it


def test_candidates_agree_with_checking_every_site_day(tmp_path):
    """The index by day start finds exactly what a check of every site-day finds: files
    across many days, zones either side of UTC, a DST change, files without statistics."""
    rng = random.Random(7)
    zones = {"la": "America/Los_Angeles", "kathmandu": "Asia/Kathmandu", "chatham": "Pacific/Chatham",
             "utc": "UTC"}
    days = [date(2026, 10, 20) + timedelta(days=i) for i in range(20)]  # Los Angeles leaves DST on 1 Nov
    runs = {(site, day): DayRun(rng.randrange(0, 40), None) for site in zones for day in days
            if rng.random() < 0.7}
    base = datetime(2026, 10, 19, tzinfo=UTC)
    files = []
    for i in range(400):
        first = base + timedelta(minutes=rng.randrange(0, 23 * 24 * 60))
        last = first + timedelta(minutes=rng.choice([0, 5, 90, 30 * 60]))
        stats = rng.random() > 0.05
        files.append(Appended(rng.randrange(0, 40), base, tmp_path / f"{i}.parquet",
                              first if stats else None, last if stats else None))

    def brute(f):
        for key, run in runs.items():
            start, end = local_day_bounds(key[1], zones[key[0]])
            if run.missed(f.version, f.committed_at) and (
                    f.first_event is None or (f.first_event < end and f.last_event >= start)):
                return True
        return False

    expected = [f for f in files if brute(f)]
    assert 0 < len(expected) < len(files)
    assert candidates(files, runs, zones) == expected

"""Pure helpers: bucketing and partitions, CQL loading, and the stack's error messages."""
from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest

from infra import proc
from schemas import cql_statements
from views.catalogue import bucket_start, bucket_starts, local_day_bounds, period_key, periods_between

UTC = timezone.utc


def test_periods_cover_exactly_the_partitions_of_a_range():
    start, end = datetime(2026, 1, 30, 12, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    assert periods_between("hour", start, end) == ["2026-01", "2026-02"]
    assert periods_between("minute", start, datetime(2026, 2, 1, 0, 1, tzinfo=UTC)) == ["2026-01-30", "2026-01-31", "2026-02-01"]
    assert periods_between("day", datetime(2024, 12, 31, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)) == ["2024", "2025"]
    assert period_key("minute", datetime(2026, 11, 21, 23, 59, tzinfo=UTC)) == "2026-11-21"


def test_bucket_starts_floor_the_first_bucket():
    starts = bucket_starts(datetime(2026, 11, 21, 10, 30, tzinfo=UTC), datetime(2026, 11, 21, 13, tzinfo=UTC), "hour")
    assert [t.hour for t in starts] == [10, 11, 12]


def test_cql_is_filled_in_and_has_no_counters():
    statements = cql_statements("px_test", 3)
    assert statements[0].startswith("CREATE KEYSPACE IF NOT EXISTS px_test")
    assert "'replication_factor': 3" in statements[0]
    assert not any("counter" in s.lower() for s in statements)
    with pytest.raises(ValueError):
        cql_statements("bad; DROP", 1)


def test_a_taken_port_is_named_in_the_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(proc.ServiceError, match=f"127.0.0.1:{port}, needed by Kafka, is already taken"):
            proc.ensure_port_free("Kafka", "127.0.0.1", port)


def test_a_service_that_dies_at_start_shows_its_log(tmp_path):
    log_file, pid_file = tmp_path / "x.log", tmp_path / "x.pid"
    proc.start_detached("x", ["sh", "-c", "echo 'boom: no such config' ; exit 3"], pid_file, log_file)
    with pytest.raises(proc.ServiceError, match="(?s)x exited during start-up.*boom: no such config"):
        proc.wait_until("x", lambda: False, timeout=30, pid_file=pid_file, log_file=log_file, interval=0.2)


def test_python_buckets_follow_the_zone_like_the_spark_transform():
    """The same instants as tests/stack/test_views_transforms.py::test_hours_and_days_follow_the_site_zone."""
    def at(s: str) -> datetime:
        return datetime.fromisoformat(s + "+00:00")

    assert bucket_start(at("2026-10-25T00:10:00"), "hour", "Europe/Paris") == at("2026-10-25T00:00:00")
    assert bucket_start(at("2026-10-25T01:10:00"), "hour", "Europe/Paris") == at("2026-10-25T01:00:00")
    assert bucket_start(at("2026-11-21T09:29:00"), "hour", "Asia/Kolkata") == at("2026-11-21T08:30:00")
    assert bucket_start(at("2026-10-24T22:30:00"), "day", "Europe/Paris") == at("2026-10-24T22:00:00")
    assert local_day_bounds(datetime(2026, 10, 25).date(), "Europe/Paris") == (at("2026-10-24T22:00:00"),
                                                                               at("2026-10-25T23:00:00"))
    hours = bucket_starts(*local_day_bounds(datetime(2026, 10, 25).date(), "Europe/Paris"), "hour", "Europe/Paris")
    assert len(hours) == 25


def test_a_kafka_cluster_id_never_reads_as_an_option():
    from infra.kafka_node import new_cluster_id  # noqa: PLC0415 -- with the test that needs it

    ids = {new_cluster_id() for _ in range(5000)}  # about 1 in 64 raw ids starts with '-'
    assert len(ids) == 5000 and not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)

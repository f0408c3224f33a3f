"""How the speed layer starts its stateful queries: resume, or rebuild after a change of shape."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from infra.settings import load_settings
from infra.spark import session_conf
from speed_layer.checkpoints import (
    SESSIONS_QUERY_VERSION,
    VIEWS_QUERY_VERSION,
    explain_failure,
    older_checkpoints,
    query_checkpoint,
    query_start,
)

UTC = timezone.utc
# What Spark 4.2 answered when the views query gained grouping keys over an old checkpoint.
SPARK_ERROR = ("[STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE] Provided key schema does not match existing state key "
               "schema. Existing key_schema=StructType(StructField(site,StringType,true),...) SQLSTATE: XXKST")


def test_a_new_install_starts_from_the_configured_offsets(tmp_path: Path):
    assert query_start(tmp_path, "speed_views", [], "earliest") == ({"startingOffsets": "earliest"}, None)


def test_an_existing_checkpoint_resumes(tmp_path: Path):
    query_checkpoint(tmp_path, "speed_views").mkdir()
    (tmp_path / "speed_views").mkdir()  # an old one beside it changes nothing
    assert query_start(tmp_path, "speed_views", [datetime(2026, 11, 21, tzinfo=UTC)], "latest") == ({"startingOffsets": "latest"}, None)


def test_a_new_query_version_rebuilds_from_the_earliest_boundary(tmp_path: Path):
    (tmp_path / "speed_views").mkdir()  # version 1 had no suffix
    (tmp_path / "speed_views.replaced-20260101T000000").mkdir()  # moved aside: not a version
    assert older_checkpoints(tmp_path, "speed_views") == [tmp_path / "speed_views"]
    boundaries = [datetime(2026, 11, 21, 23, tzinfo=UTC), datetime(2026, 11, 22, 5, tzinfo=UTC)]
    options, note = query_start(tmp_path, "speed_views", boundaries, "earliest")
    assert options == {"startingTimestamp": str(int(datetime(2026, 11, 21, 22, tzinfo=UTC).timestamp() * 1000))}
    assert "cannot be restored" in note and str(tmp_path / "speed_views") in note
    assert str(query_checkpoint(tmp_path, "speed_views")) in note and f"_v{VIEWS_QUERY_VERSION}" in note


def test_without_a_boundary_the_rebuild_reads_all_kafka_keeps(tmp_path: Path):
    options, note = query_start(tmp_path, "speed_views", [], "latest", rebuild=True)
    assert options == {"startingOffsets": "earliest"} and "rebuild asked for" in note


def test_a_checkpoint_that_cannot_be_restored_is_explained(tmp_path: Path):
    message = explain_failure(SPARK_ERROR, tmp_path / "speed_views_v2")
    assert message is not None
    assert "VIEWS_QUERY_VERSION" in message and "parallax speed --rebuild" in message
    assert "StructType" not in message  # a way forward, not Spark's internals
    assert explain_failure("Connection refused", tmp_path) is None


def test_the_sessions_query_has_its_own_version_and_rebuild(tmp_path: Path):
    (tmp_path / "speed_sessions_v1").mkdir()
    assert older_checkpoints(tmp_path, "speed_sessions") == [tmp_path / "speed_sessions_v1"]
    options, note = query_start(tmp_path, "speed_sessions", [], "latest")
    assert options == {"startingOffsets": "earliest"}
    assert str(query_checkpoint(tmp_path, "speed_sessions")) in note and f"_v{SESSIONS_QUERY_VERSION}" in note
    message = explain_failure(SPARK_ERROR, tmp_path / f"speed_sessions_v{SESSIONS_QUERY_VERSION}")
    assert "SESSIONS_QUERY_VERSION" in message and "parallax speed --rebuild" in message


def test_checkpoints_keep_the_configured_number_of_state_versions(monkeypatch):
    monkeypatch.delenv("PARALLAX_SPEED_STATE_VERSIONS", raising=False)
    assert session_conf(load_settings())["spark.sql.streaming.minBatchesToRetain"] == "20"
    monkeypatch.setenv("PARALLAX_SPEED_STATE_VERSIONS", "7")
    assert session_conf(load_settings())["spark.sql.streaming.minBatchesToRetain"] == "7"

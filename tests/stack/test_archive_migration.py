"""An archive of an earlier Parallax (Parquet written by Spark's file sink) becomes the Delta
table in place: every committed event kept, nothing the old log did not commit taken in,
and the layers refuse the old archive until it is migrated."""
from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest

from batch_layer.days import read_days
from batch_layer.migrate_archive import MigrationError, migrate
from infra import master
from speed_layer.queries import archive_frame
from tools.synthetic import archived_event


def _file_sink_archive(spark, root, batches: list[list[dict]]) -> None:
    """``batches`` archived by a streaming query with Spark's Parquet file sink, one micro-batch
    each, as the archive query of an earlier Parallax wrote them."""
    inbox = root / "inbox"
    inbox.mkdir()
    for i, events in enumerate(batches):
        (inbox / f"{i:03}.json").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    query = (archive_frame(spark.readStream.option("maxFilesPerTrigger", 1).text(str(inbox)))
             .writeStream.format("parquet").partitionBy("date").option("path", str(root / "events"))
             .option("checkpointLocation", str(root / "checkpoint")).trigger(availableNow=True).start())
    query.awaitTermination()


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    for f in path.rglob("*"):
        os.utime(f, (then, then))


def test_a_file_sink_archive_is_migrated_without_losing_or_adding_an_event(spark, tmp_path):
    start = datetime.now(UTC).replace(hour=20, minute=0, second=0, microsecond=0) - timedelta(days=3)
    batches = [[archived_event("mig", start + timedelta(hours=3 * b + i / 10), f"v{i % 7}") for i in range(40)]
               for b in range(3)]  # three micro-batches over two UTC dates
    _file_sink_archive(spark, tmp_path, batches)
    events = tmp_path / "events"
    # A micro-batch that failed after writing its file: on disk, not in the file sink's log.
    day_dir = next(events.glob("date=*"))
    stray = next(day_dir.glob("*.parquet"))
    shutil.copy(stray, day_dir / "part-99999-failed-batch.c000.snappy.parquet")
    sent = {e["event_id"] for b in batches for e in b}

    assert master.is_legacy(events)
    with pytest.raises(RuntimeError, match="parallax archive migrate"):
        read_days(spark, str(events), start.date(), start.date(), {"mig": "UTC"})
    with pytest.raises(MigrationError, match="stop the speed layer"):
        migrate(spark, events)  # its log was written a moment ago: a speed layer may be running
    assert not master.table_exists(events)

    _age(events, 600)
    result = migrate(spark, events)
    assert result is not None and result.events == len(sent) and result.before == result.after
    assert sum(n for n, _ in result.after.values()) == len(sent)
    table = master.read_table(spark, events)
    assert {r.event_id for r in table.select("event_id").collect()} == sent
    assert table.count() == len(sent)  # the failed batch's copies are not in the table
    assert not master.is_legacy(events) and (events / "_spark_metadata.migrated").is_dir()
    assert migrate(spark, events) is None  # once is enough


def test_a_migration_that_would_change_the_events_leaves_the_archive_as_it_was(spark, tmp_path):
    """The old log lists a file that is gone (deleted by hand): the Delta table could not hold
    what the old archive did, so nothing is changed and the operator is told why."""
    start = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=2)
    _file_sink_archive(spark, tmp_path, [[archived_event("mig2", start + timedelta(minutes=i), "v") for i in range(5)]])
    events = tmp_path / "events"
    next(events.glob("date=*/*.parquet")).unlink()
    _age(events, 600)
    with pytest.raises(Exception):  # noqa: B017 -- Spark's own error for the missing file, before any change
        migrate(spark, events)
    assert master.is_legacy(events) and not master.table_exists(events)

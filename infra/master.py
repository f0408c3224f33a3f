"""The master dataset as Spark writes and reads it: one Delta Lake table of raw events,
partitioned by their UTC event date (``date``), at ``paths.master_dir``.

The speed layer's archive query appends to it; the batch layer reads it, and rewrites
parts of it (erasure, compaction) in transactions beside that running writer: Delta's log
decides which files make the table, so a rewrite replaces files atomically, and a reader
sees the table before it or after it, never half. (The serving layer reads the same log
without Spark: ``store.archive``.) Spark's session has Delta's jars and settings from
``infra.spark``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deltalake import DeltaTable

if TYPE_CHECKING:  # infra is imported by light processes too: Spark is the caller's
    from pyspark.sql import DataFrame, SparkSession

FORMAT = "delta"
PARTITION = "date"
LOG_DIR = "_delta_log"
# The log of Spark's Parquet file sink, the master dataset's format before Delta Lake.
FILE_SINK_LOG = "_spark_metadata"
# Events archived before a new event field existed lack its column: the table's schema
# takes the new column on the first write that has it (older rows read it as null).
WRITE_OPTIONS = {"mergeSchema": "true"}


def table_exists(path: str | Path) -> bool:
    """Whether the table has been created (its first commit written)."""
    return (Path(path) / LOG_DIR).is_dir()


def sql_name(path: str | Path) -> str:
    """The table as Spark SQL names it by its path (``delta.`...```, a backtick doubled)."""
    return f"{FORMAT}.`" + str(path).replace("`", "``") + "`"


def is_legacy(path: str | Path) -> bool:
    """Whether ``path`` holds a Parquet archive of an earlier Parallax, not yet migrated
    (``parallax archive migrate``)."""
    path = Path(path)
    return not table_exists(path) and ((path / FILE_SINK_LOG).is_dir() or any(path.glob("date=*")))


def current_version(path: str | Path) -> int | None:
    """The table's newest version (read from its log, without Spark); None before its
    first commit."""
    if not table_exists(path):
        return None
    return DeltaTable(str(path)).version()


def read_table(spark: SparkSession, path: str | Path, version: int | None = None) -> DataFrame:
    """The table at ``version`` (default: its current version). A batch run reads one
    version, recorded with the run: what was committed after it is the run's late data."""
    reader = spark.read.format(FORMAT)
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(str(path))


def append_events(events: DataFrame, path: str | Path) -> None:
    """Append archived events (``speed_layer.queries.archive_frame``'s shape) in one
    commit: what the migration, the tests and the benchmarks write."""
    (events.write.format(FORMAT).mode("append").options(**WRITE_OPTIONS).partitionBy(PARTITION)
     .save(str(path)))

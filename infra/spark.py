"""Spark's configuration for Parallax's jobs, defined once: the sessions the jobs build
(``get_session``) and what spark-submit passes for the DAGs (``submit_conf``), with the
Kafka connector and Delta Lake (the master dataset's table format) jars matching the
installed PySpark."""
from __future__ import annotations

import logging
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from infra.maven import fetch_jars
from infra.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# The throughput collector: Parallax's jobs want throughput, not short pauses (BENCHMARKS.md,
# the speed layer's garbage collector).
DRIVER_JAVA_OPTIONS = "-XX:+UseParallelGC"
# The environment of Spark's JVM. Its own address lookup runs before any conf applies:
# without this it picks the host's outward interface and warns about it (nothing binds
# there; spark.driver.bindAddress rules). The nightly DAG gives spark-submit the same.
# Python workers (the acquisition rule runs in them) use this environment's Python, which
# has Parallax and its dependencies installed (PySpark reads it from the environment only).
SPARK_ENV = {"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
# Set by spark-submit for the Python driver it starts, not by PySpark's own launcher.
_SUBMITTED = "PYSPARK_GATEWAY_PORT"
# Delta Lake's release built against Spark 4.2 (delta-spark 4.4 pins Spark 4.2.0).
DELTA_VERSION = "4.4.0"
# Delta's settings for every table it creates (the master dataset): deletes and compactions
# rewrite whole files (no deletion vectors), so a file the log lists holds exactly its rows
# and the serving layer's DuckDB reads the listed files as they are; file statistics only
# for the columns something prunes by (event time: late data; site), which keeps the
# streaming archive's per-file cost small. Not visitor_id: a file's min and max visitor ids
# would stay in the log (30 days) after an erasure deleted them, and random ids prune nothing.
DELTA_TABLE_DEFAULTS = {
    "enableDeletionVectors": "false",
    "dataSkippingStatsColumns": "event_time,site",
}


def connector_jars(settings: Settings) -> list[Path]:
    """The Spark Kafka connector (and its deps) for exactly the installed PySpark version."""
    pyspark_version = version("pyspark")
    lib = fetch_jars(
        settings.paths.cache_dir,
        f"spark-sql-kafka-{pyspark_version}",
        [f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark_version}"],
    )
    return sorted(lib.glob("*.jar"))


def delta_jars(settings: Settings) -> list[Path]:
    """Delta Lake's two jars, without their dependencies: Spark provides those (the full
    set would put a second Scala library and Hadoop client on the classpath)."""
    lib = fetch_jars(
        settings.paths.cache_dir,
        f"delta-{DELTA_VERSION}",
        [f"io.delta:delta-spark_2.13:{DELTA_VERSION}", f"io.delta:delta-storage:{DELTA_VERSION}"],
        transitive=False,
    )
    return sorted(lib.glob("*.jar"))


def session_conf(settings: Settings, *, batch: bool = False) -> dict[str, str]:
    conf = {
        "spark.master": settings.spark.master,
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.extraJavaOptions": DRIVER_JAVA_OPTIONS,
        "spark.ui.enabled": "false",
        # A batch job's stages and their tasks done, as lines in its log (the Airflow task's).
        "spark.ui.showConsoleProgress": "true" if batch else "false",
        # All buckets are UTC instants; the session time zone must not depend on the host.
        "spark.sql.session.timeZone": "UTC",
        # Streaming: a few shuffle partitions keep micro-batches quick on 2 cores (and are
        # fixed in a query's checkpoint). Batch: enough that each task's aggregation hash
        # map fits in memory instead of spilling (adaptive execution coalesces the rest).
        "spark.sql.shuffle.partitions": str(settings.spark.batch_shuffle_partitions) if batch else "4",
        "spark.sql.streaming.stateStore.providerClass":
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        # How many micro-batches of state the checkpoints keep (SpeedSettings.state_versions).
        "spark.sql.streaming.minBatchesToRetain": str(settings.speed.state_versions),
        # The speed queries' state lasts a watermark and every micro-batch writes into it
        # (each event's id, each touched bucket and session); CPU is what limits the rate,
        # and the disk is sized by the versions kept. Compressing each commit's files costs
        # more CPU than the disk it saves, and counting the rows costs a lookup before every
        # write and delete, for a metric (numRowsTotal) that nothing here reads. Neither is
        # kept in a checkpoint nor changes a state's shape (BENCHMARKS.md, the speed layer).
        "spark.sql.streaming.stateStore.rocksdb.compression": "none",
        "spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows": "false",
        # HLL sketches are aggregated by ObjectHashAggregate, which falls back to sorting its
        # input after 128 keys per task. Keep them hashed: the batch views cluster rows by view
        # key first (a task holds a few thousand sketches at most, a few KiB each), and a speed
        # micro-batch's partial aggregation has a few tens of thousands of small minute sketches.
        "spark.sql.objectHashAggregate.sortBased.fallbackThreshold": "32768",
    }
    if batch:
        # The visitor partials hold hundreds of thousands of keys per task: the small first
        # level of the two-level aggregation map fills at once, after which every row pays
        # for a probe there before the real map.
        conf["spark.sql.codegen.aggregate.map.twolevel.enabled"] = "false"
        # Listing a table's folders in a Spark job (the master dataset's VACUUM): with
        # Spark's default of 10,000, a VACUUM of a small table took 51-118 s on 2 cores, with
        # 8 9-17 s (BENCHMARKS.md, settings chosen by measurement).
        conf["spark.sql.sources.parallelPartitionDiscovery.parallelism"] = "8"
    conf.update({
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Replaying the table's log into a snapshot: Delta's 50 partitions are 50 tasks on 2 cores.
        "spark.databricks.delta.snapshotPartitions": "4",
        **{f"spark.databricks.delta.properties.defaults.{k}": v for k, v in DELTA_TABLE_DEFAULTS.items()},
    })
    return conf


def jars_conf(settings: Settings, *, with_kafka: bool) -> dict[str, str]:
    """The jars a session loads: Delta Lake always (every job reads or writes the master
    dataset), the Kafka connector for the streaming jobs. Fetched once (``parallax stack
    fetch``), then found in the download cache."""
    jars = delta_jars(settings) + (connector_jars(settings) if with_kafka else [])
    return {"spark.jars": ",".join(str(j) for j in jars)}


# What spark-submit takes as arguments of its own rather than as conf.
_SUBMIT_ARGUMENTS = ("spark.master", "spark.driver.memory")


def submit_conf(settings: Settings) -> dict[str, str]:
    """The batch session's conf as spark-submit passes it (the nightly DAG): the job runs
    with this environment's Python, and master and driver memory are spark-submit's own
    arguments (the connection's host, ``driver_memory``)."""
    conf = {k: v for k, v in session_conf(settings, batch=True).items() if k not in _SUBMIT_ARGUMENTS}
    return {**conf, **jars_conf(settings, with_kafka=False),
            "spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable}


def apply_spark_env() -> None:
    """``SPARK_ENV`` in this process's environment (where not set), for the JVM and the
    Python workers a session about to start launches."""
    for key, value in SPARK_ENV.items():
        os.environ.setdefault(key, value)


def get_session(settings: Settings, app_name: str, *, with_kafka: bool = False, batch: bool = False) -> SparkSession:
    from pyspark.sql import SparkSession  # noqa: PLC0415 -- PySpark: infra is imported by light processes too

    apply_spark_env()
    builder = SparkSession.builder.appName(app_name)
    conf = {**session_conf(settings, batch=batch), **jars_conf(settings, with_kafka=with_kafka)}
    if os.environ.get(_SUBMITTED):
        # Launched by spark-submit (Airflow): master and memory were set by the submitter.
        conf = {k: v for k, v in conf.items() if k not in _SUBMIT_ARGUMENTS}
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark

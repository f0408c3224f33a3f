"""Spark sessions for Parallax's jobs: the Kafka connector jars matching the installed PySpark."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from infra.maven import fetch_jars
from infra.settings import Settings

log = logging.getLogger(__name__)


# The throughput collector: Parallax's jobs want throughput, not short pauses (the speed
# bench: about 2% less Spark CPU and 7% more events/s than G1).
DRIVER_JAVA_OPTIONS = "-XX:+UseParallelGC"
# The environment of Spark's JVM. Its own address lookup runs before any conf applies:
# without this it picks the host's outward interface and warns about it (nothing binds
# there; spark.driver.bindAddress rules). The nightly DAG gives spark-submit the same.
SPARK_ENV = {"SPARK_LOCAL_IP": "127.0.0.1"}


def connector_jars(settings: Settings) -> list[Path]:
    """The Spark Kafka connector (and its deps) for exactly the installed PySpark version."""
    import pyspark

    version = pyspark.__version__
    lib = fetch_jars(
        settings.cache_dir,
        f"spark-sql-kafka-{version}",
        [f"org.apache.spark:spark-sql-kafka-0-10_2.13:{version}"],
    )
    return sorted(lib.glob("*.jar"))


def session_conf(settings: Settings, *, with_kafka: bool, batch: bool = False) -> dict[str, str]:
    conf = {
        "spark.master": settings.spark_master,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        # Applied where PySpark starts the JVM; the nightly DAG passes the same to spark-submit.
        "spark.driver.extraJavaOptions": DRIVER_JAVA_OPTIONS,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # All buckets are UTC instants; the session time zone must not depend on the host.
        "spark.sql.session.timeZone": "UTC",
        # Streaming: a few shuffle partitions keep micro-batches quick on 2 cores (and are
        # fixed in a query's checkpoint). Batch: enough that each task's aggregation hash
        # map fits in memory instead of spilling (adaptive execution coalesces the rest).
        "spark.sql.shuffle.partitions": str(settings.batch_shuffle_partitions) if batch else "4",
        "spark.sql.streaming.stateStore.providerClass":
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        # How many micro-batches of state the checkpoints keep (Settings.speed_state_versions).
        "spark.sql.streaming.minBatchesToRetain": str(settings.speed_state_versions),
        # The speed queries' state lasts a watermark (at 20,000 events/s, 12 M event ids in
        # each dedupe) and every micro-batch writes into it (each event's id, each touched
        # bucket and session); CPU is what limits the rate (BENCHMARKS.md), and the disk is
        # sized by the versions kept.
        # Compressing each commit's files costs more CPU than the disk it saves, and counting
        # the rows costs a lookup before every write and delete, for a metric (numRowsTotal)
        # that nothing here reads. Together: a tenth less Spark CPU on the speed bench. Neither
        # is kept in a checkpoint nor changes a state's shape.
        "spark.sql.streaming.stateStore.rocksdb.compression": "none",
        "spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows": "false",
        # HLL sketches are aggregated by ObjectHashAggregate, which falls back to sorting its
        # input after 128 keys per task. Keep them hashed: the batch views cluster rows by view
        # key first (a task holds a few thousand sketches at most, a few KiB each), and a speed
        # micro-batch's partial aggregation has a few tens of thousands of small minute sketches
        # (sorting its ~16 rows per event cost ~8% of the speed bench's Spark CPU).
        "spark.sql.objectHashAggregate.sortBased.fallbackThreshold": "32768",
    }
    if batch:
        # The visitor partials hold hundreds of thousands of keys per task: the small first
        # level of the two-level aggregation map fills at once, after which every row pays
        # for a probe there before the real map (a third of those aggregations' CPU).
        conf["spark.sql.codegen.aggregate.map.twolevel.enabled"] = "false"
    if with_kafka:
        conf["spark.jars"] = ",".join(str(j) for j in connector_jars(settings))
    return conf


def get_session(settings: Settings, app_name: str, *, with_kafka: bool = False, batch: bool = False):
    from pyspark.sql import SparkSession

    for key, value in SPARK_ENV.items():
        os.environ.setdefault(key, value)
    builder = SparkSession.builder.appName(app_name)
    conf = session_conf(settings, with_kafka=with_kafka, batch=batch)
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit (Airflow): master and memory were set by the submitter.
        conf = {k: v for k, v in conf.items() if k not in ("spark.master", "spark.driver.memory")}
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark

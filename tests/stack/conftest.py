"""One SparkSession for the stack tests, with the project's own settings sized for tests."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from infra.settings import load_settings
from infra.spark import apply_spark_env, session_conf


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    # The project's own settings (state store, UTC, aggregation thresholds), sized for tests.
    conf = {**session_conf(load_settings(), with_kafka=False), "spark.master": "local[1]",
            "spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "2"}
    apply_spark_env()
    builder = SparkSession.builder.appName("parallax-tests")
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    yield session
    session.stop()

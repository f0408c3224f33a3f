"""Fixtures: one SparkSession and, for the stack tests, the real stack started once."""
from __future__ import annotations

import logging
import os

import pytest


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    from infra.settings import load_settings
    from infra.spark import session_conf

    # The project's own settings (state store, UTC, aggregation thresholds), sized for tests.
    conf = {**session_conf(load_settings(), with_kafka=False), "spark.master": "local[1]",
            "spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "2"}
    builder = SparkSession.builder.appName("parallax-tests")
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    yield session
    session.stop()


# --- the real stack, started once per session (or reused when it is already running) ---

@pytest.fixture(scope="session")
def settings(tmp_path_factory):
    """Settings for this test session: the shared local Kafka and Cassandra, but a master
    dataset, checkpoints and an Airflow database of its own (a running Airflow's scheduler
    must not pick up the runs `dag.test()` makes), and short triggers so tests wait less."""
    run = tmp_path_factory.mktemp("parallax")
    os.environ.pop("AIRFLOW_HOME", None)
    os.environ.update({
        "PARALLAX_MASTER_DIR": str(run / "master"),
        "PARALLAX_CHECKPOINT_DIR": str(run / "checkpoints"),
        "PARALLAX_AIRFLOW_HOME": str(run / "airflow"),
        "PARALLAX_SPEED_TRIGGER": "2 seconds",
        "PARALLAX_ARCHIVE_TRIGGER": "3 seconds",
        "PARALLAX_SPARK_DRIVER_MEMORY": "1g",
    })
    from infra import airflow_env
    from infra.settings import load_settings

    s = load_settings()
    airflow_env.apply(s)
    s.paths.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return s


@pytest.fixture(scope="session")
def airflow_db(settings):
    """This session's Airflow metadata database, migrated (DAG tests read it)."""
    from infra import airflow_env

    airflow_env.migrate_db(settings)
    return settings


@pytest.fixture(scope="session")
def stack(settings):
    from infra import stack as st

    states = st.status(settings)
    started_here = not (states["kafka"] == "ready" and states["cassandra"] == "ready")
    st.up(settings)  # idempotent: starts what is not running, applies topics and schema migrations
    yield settings
    if started_here:
        st.down(settings)


@pytest.fixture(scope="session")
def cassandra(stack):
    from infra.clients import cassandra_session

    session = cassandra_session(stack, stack.cassandra.keyspace)
    yield session
    session.cluster.shutdown()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("logs")


def _end_offsets(settings) -> str:
    """Where `events` ends now, as Spark's startingOffsets JSON: the test session's speed
    layer reads only what the tests send, not what earlier runs left in the topic."""
    import json

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap)
    try:
        parts = [TopicPartition(settings.kafka.topic_events, p) for p in consumer.partitions_for_topic(settings.kafka.topic_events)]
        ends = consumer.end_offsets(parts)
    finally:
        consumer.close()
    return json.dumps({settings.kafka.topic_events: {str(tp.partition): off for tp, off in ends.items()}})


@pytest.fixture(scope="session")
def speed_layer(stack, log_dir):
    from infra.proc import CliProcess

    svc = CliProcess("speed", ["speed"], log_dir / "speed.log",
                     env={"PARALLAX_STARTING_OFFSETS": _end_offsets(stack)}).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def collector_url(stack, log_dir):
    import requests

    from infra.proc import CliProcess
    from tests.procs import free_port, wait_for

    port = free_port()
    svc = CliProcess("collector", ["collect", "--port", str(port), "--workers", "2"], log_dir / "collector.log").start()
    url = f"http://127.0.0.1:{port}"
    wait_for("collector health", lambda: requests.get(f"{url}/health", timeout=2).ok, timeout=60)
    yield url
    svc.stop()


@pytest.fixture(scope="session")
def serving_url(stack, log_dir):
    import requests

    from infra.proc import CliProcess
    from tests.procs import free_port, wait_for

    port = free_port()
    svc = CliProcess("serving", ["serve", "--port", str(port)], log_dir / "serving.log").start()
    url = f"http://127.0.0.1:{port}"
    wait_for("serving health", lambda: requests.get(f"{url}/api/v1/health", timeout=2).ok, timeout=60)
    yield url
    svc.stop()


@pytest.fixture
def new_site(cassandra, stack):
    """A freshly registered site, unique to the test, so tests never see each other's data."""
    import uuid

    from infra.sites import add_site

    def make(prefix: str = "t") -> str:
        site = f"{prefix}-{uuid.uuid4().hex[:10]}"
        add_site(cassandra, stack.cassandra.keyspace, site, ["example.test"], "UTC")
        return site

    return make


@pytest.fixture
def events_tail(stack):
    """Kafka `events` from now on."""
    from tests.procs import KafkaTail

    tail = KafkaTail(stack, stack.kafka.topic_events)
    yield tail
    tail.close()


@pytest.fixture
def invalid_tail(stack):
    """Kafka `events.invalid` from now on."""
    from tests.procs import KafkaTail

    tail = KafkaTail(stack, stack.kafka.topic_invalid)
    yield tail
    tail.close()


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium: Debian's (Playwright's own download does not work here), or the
    one PARALLAX_CHROMIUM names."""
    import shutil

    executable = os.environ.get("PARALLAX_CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.skip("no Chromium: install Debian's chromium (make test does) or set PARALLAX_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()

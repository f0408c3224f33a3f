"""Fixtures of the real stack, started once per session (or reused when it is already
running), for ``tests/stack`` and ``tests/browser``; ``tests/unit`` needs none of them.

Every test outside ``tests/unit`` is marked ``stack``: ``pytest -m "not stack"`` or
``pytest tests/unit`` runs the fast ones alone.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cassandra.cluster import Session
from flask import Flask
from flask.testing import FlaskClient

from infra import airflow_env
from infra import stack as local_stack
from infra.clients import cassandra_session, end_offsets
from infra.proc import CliProcess, free_port
from infra.settings import Settings, load_settings
from serving_layer.app import create_app
from store.accounts import Accounts, generate_password
from store.provision import provision
from store.registry import Registry
from tests.helpers import KafkaTail, wait_for

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TESTS / "unit" not in item.path.parents:
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
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
    s = load_settings()
    airflow_env.apply(s)
    s.paths.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return s


@pytest.fixture(scope="session")
def airflow_db(settings: Settings) -> Settings:
    """This session's Airflow metadata database, migrated (DAG tests read it)."""
    airflow_env.migrate_db(settings)
    return settings


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    started_here = not local_stack.is_up(settings)
    local_stack.up(settings)  # idempotent: starts what is not running
    provision(settings)  # topics, tables and their migrations
    yield settings
    if started_here:
        local_stack.down(settings)


@pytest.fixture(scope="session")
def cassandra(stack: Settings) -> Iterator[Session]:
    session = cassandra_session(stack, stack.cassandra.keyspace)
    yield session
    session.cluster.shutdown()


@pytest.fixture(scope="session")
def registry(cassandra: Session, stack: Settings) -> Registry:
    return Registry(cassandra, stack.cassandra.keyspace)


@pytest.fixture(scope="session")
def accounts(cassandra: Session, stack: Settings) -> Accounts:
    return Accounts(cassandra, stack.cassandra.keyspace)


@pytest.fixture(scope="session")
def admin_token(accounts: Accounts) -> str:
    """An API token of an admin of this test session (every site)."""
    email = f"admin-{uuid.uuid4().hex[:10]}@example.test"
    accounts.add_user(email, generate_password(), name="Test admin", is_admin=True)
    return accounts.create_token(email, "tests")[1]


@pytest.fixture(scope="session")
def api(admin_token: str) -> Iterator[requests.Session]:
    """HTTP as that admin: requests with its token."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {admin_token}"
    yield http
    http.close()


@pytest.fixture(scope="session")
def serving_app(stack: Settings, admin_token: str) -> Iterator[Callable[..., FlaskClient]]:
    """The serving app in this process (without its live feed): ``serving_app(**changes)``
    (settings groups changed as ``Settings.replace`` takes them) gives a test client that
    sends the session's admin token."""
    apps: list[Flask] = []

    def make(**changes: dict) -> FlaskClient:
        app = create_app(stack.replace(**changes) if changes else stack, live_feed=False)
        apps.append(app)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {admin_token}"
        return client

    yield make
    for app in apps:
        app.extensions["parallax.store"].close()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def speed_process(stack: Settings, log_dir: Path) -> Iterator[CliProcess]:
    """The test session's speed layer (``parallax speed``), started once; tests ask for
    ``speed_layer``, which starts it again if it has exited."""
    # Where `events` ends now, as Spark's startingOffsets JSON: the test session's speed
    # layer reads only what the tests send, not what earlier runs left in the topic. Every
    # start passes them: a query resumes from its checkpoint (and ignores them), and one
    # whose checkpoint a speed layer that died early did not make starts where the session did.
    topic = stack.kafka.topic_events
    start = json.dumps({topic: {str(p): offset for p, offset in end_offsets(stack, topic).items()}})
    svc = CliProcess("speed", ["speed"], log_dir / "speed.log", env={"PARALLAX_STARTING_OFFSETS": start}).start()
    yield svc
    svc.stop()


@pytest.fixture
def speed_layer(speed_process: CliProcess) -> CliProcess:
    """The session's speed layer, running: if it has exited since the last test that asked
    for it (`parallax speed` exits non-zero when one of its queries dies), it is started
    again from its checkpoints, with a warning, rather than leaving every later test to time
    out waiting for it."""
    if speed_process.proc is not None and not speed_process.alive():
        warnings.warn(f"the speed layer had exited ({speed_process.proc.returncode}); started it again. "
                      f"Last lines of {speed_process.log_path}:\n{speed_process.log_tail(20)}", stacklevel=1)
        try:  # what may be left of it (its JVM, its live tail) must not share the checkpoints
            os.killpg(speed_process.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        speed_process.start()
    return speed_process


@pytest.fixture(scope="session")
def collector_url(stack: Settings, log_dir: Path) -> Iterator[str]:
    port = free_port()
    svc = CliProcess("collector", ["collect", "--port", str(port), "--workers", "2"], log_dir / "collector.log").start()
    url = f"http://127.0.0.1:{port}"
    wait_for("collector health", lambda: requests.get(f"{url}/health", timeout=2).ok, timeout=60)
    yield url
    svc.stop()


@pytest.fixture(scope="session")
def serving_url(stack: Settings, log_dir: Path) -> Iterator[str]:
    port = free_port()
    # Every test logs in from 127.0.0.1: the per-address login limit is raised for them
    # (tests/stack/test_login.py holds the defaults to their word on an app of its own).
    svc = CliProcess("serving", ["serve", "--port", str(port)], log_dir / "serving.log",
                     env={"PARALLAX_SERVING_LOGIN_LIMIT_IP": "1000/minute"}).start()
    url = f"http://127.0.0.1:{port}"
    wait_for("serving health", lambda: requests.get(f"{url}/api/v1/health", timeout=2).ok, timeout=60)
    yield url
    svc.stop()


@pytest.fixture
def new_site(registry: Registry) -> Callable[[str], str]:
    """A freshly registered site, unique to the test, so tests never see each other's data."""

    def make(prefix: str = "t") -> str:
        site = f"{prefix}-{uuid.uuid4().hex[:10]}"
        registry.add_site(site, ["example.test"], "UTC")
        return site

    return make


@pytest.fixture
def events_tail(stack: Settings) -> Iterator[KafkaTail]:
    """Kafka `events` from now on."""
    tail = KafkaTail(stack, stack.kafka.topic_events)
    yield tail
    tail.close()


@pytest.fixture
def invalid_tail(stack: Settings) -> Iterator[KafkaTail]:
    """Kafka `events.invalid` from now on."""
    tail = KafkaTail(stack, stack.kafka.topic_invalid)
    yield tail
    tail.close()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One SparkSession for the tests that run Spark (stack and browser tests), with the
    project's own settings (state store, UTC, aggregation thresholds), sized for tests."""
    # Imported here: the unit tests, which share this file, do not pay for PySpark.
    from pyspark.sql import SparkSession  # noqa: PLC0415

    from infra.spark import apply_spark_env, jars_conf, session_conf  # noqa: PLC0415

    settings = load_settings()
    conf = {**session_conf(settings), **jars_conf(settings, with_kafka=False), "spark.master": "local[1]",
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

"""The local stack's processes: fetch (once, cached), start, stop and check Kafka, Cassandra
and Airflow. What they hold (topics, keyspace, tables) is ``store.provision``'s."""
from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable

from infra import airflow_env, proc
from infra import cassandra_node as cassandra
from infra import kafka_node as kafka
from infra.geoip import fetch_country_db
from infra.settings import Settings
from infra.spark import connector_jars, delta_jars

log = logging.getLogger(__name__)


def check_java() -> None:
    if shutil.which("java") is None:
        raise proc.ServiceError("Java is not installed: Kafka, Cassandra and Spark need Java 17 "
                                "(apt-get install openjdk-17-jre-headless).")
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    first = out.splitlines()[0] if out else "?"
    if '"17' not in first and '"21' not in first and '"11' not in first:
        log.warning("Java reports %s; Parallax is tested with Java 17", first)


def fetch(settings: Settings) -> None:
    """Everything the stack needs on disk: jars and the collector's country database (cached
    outside the clone) and Airflow's DB."""
    check_java()
    settings.paths.var_dir.mkdir(parents=True, exist_ok=True)
    kafka.install(settings)
    cassandra.install(settings)
    connector_jars(settings)
    delta_jars(settings)
    fetch_country_db(settings)
    airflow_env.migrate_db(settings)
    log.info("jars cached in %s; Airflow database ready in %s", settings.paths.cache_dir, settings.paths.airflow_home)


def up(settings: Settings, *, with_airflow: bool = False) -> None:
    """Start what is not running (idempotent), once everything is fetched: a slow download
    is then not mistaken for a hung start."""
    fetch(settings)
    kafka.start(settings)
    cassandra.start(settings)
    if with_airflow:
        airflow_env.start(settings)
        log.info("Airflow UI: http://127.0.0.1:%d (user admin; password in %s)", settings.airflow.port,
                 airflow_env.password_file(settings))
    log.info("stack is up: Kafka %s, Cassandra %s:%d", settings.kafka.bootstrap, settings.cassandra.hosts[0],
             settings.cassandra.port)


def down(settings: Settings) -> None:
    services = (("Airflow", airflow_env.stop), ("Cassandra", cassandra.stop), ("Kafka", kafka.stop))
    stopped = [name for name, stop in services if stop(settings)]
    log.info("stopped: %s", ", ".join(stopped) if stopped else "nothing was running")


def _state(running: bool, ready: Callable[[], bool]) -> str:
    if not running:
        return "stopped"
    try:
        return "ready" if ready() else "starting"
    except Exception:
        return "not answering"


def status(settings: Settings) -> dict[str, str]:
    return {
        "kafka": _state(kafka.is_running(settings), lambda: kafka.ready(settings)),
        "cassandra": _state(cassandra.is_running(settings), lambda: cassandra.ready(settings)),
        "airflow": _state(airflow_env.is_running(settings), lambda: proc.port_open("127.0.0.1", settings.airflow.port)),
    }


def is_up(settings: Settings) -> bool:
    """Kafka and Cassandra both answer."""
    states = status(settings)
    return states["kafka"] == states["cassandra"] == "ready"

"""`parallax stack up | down | status`: the local Kafka, Cassandra and Airflow."""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys

from infra import airflow_env, cassandra_node as cassandra, kafka_node as kafka, proc
from infra.settings import Settings
from schemas import cql_statements, topics

log = logging.getLogger(__name__)


def check_java() -> None:
    if shutil.which("java") is None:
        raise proc.ServiceError("Java is not installed: Kafka, Cassandra and Spark need Java 17 (apt-get install openjdk-17-jre-headless).")
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    first = out.splitlines()[0] if out else "?"
    if '"17' not in first and '"21' not in first and '"11' not in first:
        log.warning("Java reports %s; Parallax is tested with Java 17", first)


def create_topics(settings: Settings) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    names = {
        "events": settings.topic_events, "events.invalid": settings.topic_invalid,
        "metrics.live": settings.topic_live, "notifications": settings.topic_notifications,
    }
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="parallax-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(names[key], num_partitions=spec["partitions"], replication_factor=settings.replication_factor,
                     topic_configs=spec.get("config", {}))
            for key, spec in topics().items() if names[key] not in existing
        ]
        if wanted:
            admin.create_topics(wanted)
            log.info("created Kafka topics: %s", ", ".join(t.name for t in wanted))
    finally:
        admin.close()


ALTER_ADD = re.compile(r"ALTER TABLE (\w+)\.(\w+) ADD \(?(.*?)\)?$", re.S | re.I)


def missing_columns(statement: str, existing: set[str]) -> list[str]:
    """The ``name type`` definitions of an ``ALTER TABLE ... ADD`` migration whose columns
    the table lacks (all of them if ``existing`` is empty)."""
    m = ALTER_ADD.match(statement.strip())
    if not m:
        raise ValueError(f"unsupported migration {statement!r}: only ALTER TABLE ... ADD (columns)")
    defs = [d.strip() for d in m.group(3).split(",") if d.strip()]
    return [d for d in defs if d.split()[0].lower() not in existing]


def apply_schema(settings: Settings) -> None:
    """Create the keyspace and tables, then add the columns of each migration the table
    lacks (read from the driver's schema metadata), so running it again changes nothing."""
    from infra.clients import cassandra_session

    session = cassandra_session(settings)
    try:
        for statement in cql_statements(settings.keyspace, settings.replication_factor):
            if not statement.upper().startswith("ALTER TABLE"):
                session.execute(statement, timeout=60)
                continue
            keyspace, table = ALTER_ADD.match(statement.strip()).group(1, 2)
            session.cluster.refresh_table_metadata(keyspace, table)
            existing = set(session.cluster.metadata.keyspaces[keyspace].tables[table].columns)
            wanted = missing_columns(statement, existing)
            if wanted:
                session.execute(f"ALTER TABLE {keyspace}.{table} ADD ({', '.join(wanted)})", timeout=60)
                log.info("added column(s) to %s.%s: %s", keyspace, table, ", ".join(wanted))
        log.info("Cassandra keyspace %s and tables are in place", settings.keyspace)
    finally:
        session.cluster.shutdown()


def fetch(settings: Settings) -> None:
    """Everything the stack needs on disk: jars and the collector's country database (cached
    outside the clone) and Airflow's DB."""
    check_java()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    kafka.install(settings)
    cassandra.install(settings)
    from infra.geoip import fetch_country_db
    from infra.spark import connector_jars

    connector_jars(settings)
    fetch_country_db(settings)
    airflow_env.migrate_db(settings)
    log.info("jars cached in %s; Airflow database ready in %s", settings.cache_dir, settings.airflow_home)


def up(settings: Settings, *, with_airflow: bool = False) -> None:
    # Fetch everything first (once, cached), so a slow download is not mistaken for a hung start.
    fetch(settings)
    kafka.start(settings)
    create_topics(settings)
    cassandra.start(settings)
    apply_schema(settings)
    if with_airflow:
        airflow_env.start(settings)
        log.info("Airflow UI: http://127.0.0.1:%d (user admin; password in %s)", settings.airflow_port,
                 settings.airflow_home / "simple_auth_manager_passwords.json.generated")
    log.info("stack is up: Kafka %s, Cassandra %s:%d", settings.kafka_bootstrap, settings.cassandra_hosts[0], settings.cassandra_port)


def down(settings: Settings) -> None:
    stopped = [name for name, stop in (("Airflow", airflow_env.stop), ("Cassandra", cassandra.stop), ("Kafka", kafka.stop))
               if stop(settings)]
    log.info("stopped: %s", ", ".join(stopped) if stopped else "nothing was running")


def status(settings: Settings) -> dict[str, str]:
    def state(running: bool, ready) -> str:
        if not running:
            return "stopped"
        try:
            return "ready" if ready() else "starting"
        except Exception:
            return "not answering"

    return {
        "kafka": state(kafka.is_running(settings), lambda: kafka.ready(settings)),
        "cassandra": state(cassandra.is_running(settings), lambda: cassandra.ready(settings)),
        "airflow": state(airflow_env.is_running(settings), lambda: proc.port_open("127.0.0.1", settings.airflow_port)),
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the `parallax stack` command")

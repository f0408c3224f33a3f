"""A single-node Kafka broker in KRaft mode, run from the ``kafka_2.13`` jar and its deps."""
from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from pathlib import Path

from kafka import KafkaAdminClient

from infra import proc
from infra.maven import fetch_jars
from infra.settings import Settings

log = logging.getLogger(__name__)

LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="INFO"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="stdout"/></Root>
  </Loggers>
</Configuration>
"""


def _paths(settings: Settings) -> dict[str, Path]:
    base = settings.paths.var_dir / "kafka"
    return {
        "base": base,
        "data": base / "data",
        "conf": base / "server.properties",
        "log4j": base / "log4j2.xml",
        "pid": settings.paths.var_dir / "run" / "kafka.pid",
        "log": settings.paths.var_dir / "logs" / "kafka.log",
    }


def coordinates(settings: Settings) -> list[str]:
    v = settings.kafka.version
    # The broker jar's POM does not bring an SLF4J binding; without one the broker logs nothing.
    return [f"org.apache.kafka:kafka_2.13:{v}", "org.apache.logging.log4j:log4j-slf4j-impl:2.25.4"]


def server_properties(settings: Settings, data_dir: Path) -> str:
    host, port = settings.kafka.host_port
    cport = settings.kafka.controller_port
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{cport}",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=3",
            # One node: internal topics cannot have more replicas than that.
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "num.network.threads=2",
            "num.io.threads=4",
            "log.retention.hours=168",
            "",
        ]
    )


def install(settings: Settings) -> Path:
    """Fetch the broker jars (once) and write its configuration; return the lib folder."""
    lib = fetch_jars(settings.paths.cache_dir, f"kafka-{settings.kafka.version}", coordinates(settings))
    p = _paths(settings)
    p["base"].mkdir(parents=True, exist_ok=True)
    p["conf"].write_text(server_properties(settings, p["data"]))
    p["log4j"].write_text(LOG4J2_XML)
    return lib


def _java(settings: Settings, lib: Path, main: str, *args: str) -> list[str]:
    p = _paths(settings)
    return [
        "java",
        f"-Xms{settings.kafka.heap}",
        f"-Xmx{settings.kafka.heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={p['log4j']}",
        "-cp",
        f"{lib}/*",
        main,
        *args,
    ]


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64, never starting with '-' (the
    storage tool would read it as an option; Kafka's own ids avoid it the same way)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _format_storage(settings: Settings, lib: Path) -> None:
    """KRaft needs its log folder formatted with a cluster id once, before the first start."""
    p = _paths(settings)
    if (p["data"] / "meta.properties").exists():
        return
    cluster_id = new_cluster_id()
    log.info("formatting Kafka storage in %s (cluster id %s)", p["data"], cluster_id)
    cmd = _java(settings, lib, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(p["conf"]))
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise proc.ServiceError(f"formatting Kafka storage failed:\n{result.stdout}\n{result.stderr}")


def ready(settings: Settings) -> bool:
    # While the broker starts, the client logs every refused connection as an error.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap, request_timeout_ms=3000, client_id="parallax-check"
    )
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()
        logging.getLogger("kafka").setLevel(logging.WARNING)


def is_running(settings: Settings) -> bool:
    return proc.read_pid(_paths(settings)["pid"]) is not None


def start(settings: Settings, timeout: float = 120) -> None:
    p = _paths(settings)
    host, port = settings.kafka.host_port
    if is_running(settings):
        proc.wait_until("Kafka", lambda: ready(settings), timeout, p["pid"], p["log"])
        return
    proc.ensure_port_free("Kafka", host, port)
    proc.ensure_port_free("Kafka controller", host, settings.kafka.controller_port)
    lib = install(settings)
    _format_storage(settings, lib)
    log.info("starting Kafka %s on %s (heap %s)", settings.kafka.version, settings.kafka.bootstrap, settings.kafka.heap)
    proc.start_detached("Kafka", _java(settings, lib, "kafka.Kafka", str(p["conf"])), p["pid"], p["log"])
    proc.wait_until("Kafka", lambda: ready(settings), timeout, p["pid"], p["log"])
    log.info("Kafka is ready on %s", settings.kafka.bootstrap)


def stop(settings: Settings) -> bool:
    return proc.stop_pid_file("Kafka", _paths(settings)["pid"], timeout=60)

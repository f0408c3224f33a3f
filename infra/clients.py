"""Clients for Kafka and Cassandra, configured from the settings: created at the edges."""
from __future__ import annotations

import json
import logging
from typing import Any

from infra.settings import Settings

log = logging.getLogger(__name__)


def cassandra_session(settings: Settings, keyspace: str | None = None, connect_timeout: float = 10.0) -> Any:
    from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
    from cassandra.policies import DCAwareRoundRobinPolicy, ReconnectionPolicy

    class _Steady(ReconnectionPolicy):
        """Reconnect every 2 s: a restarted local node should be picked up quickly."""

        def new_schedule(self):
            while True:
                yield 2.0

    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(), request_timeout=20.0)
    cluster = Cluster(
        contact_points=list(settings.cassandra_hosts),
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        reconnection_policy=_Steady(),
        connect_timeout=connect_timeout,
        protocol_version=5,
    )
    return cluster.connect(keyspace)


def kafka_producer(settings: Settings, **overrides: Any) -> Any:
    """An idempotent kafka-python producer that waits for all in-sync replicas (acks=all)."""
    from kafka import KafkaProducer

    config: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        client_id="parallax",
    )
    config.update(overrides)
    return KafkaProducer(**config)


def confluent_producer(settings: Settings, **overrides: Any) -> Any:
    """The same guarantees with librdkafka (confluent-kafka), whose batching, checksums and
    I/O run in native threads, outside the GIL: acks=all, idempotent, and the Java client's
    partitioner (murmur2 of the key, as kafka-python's), so a key lands in the same partition
    whichever client wrote it. Delivery reports are served by the caller's poll()."""
    from confluent_kafka import Producer

    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "client.id": "parallax",
        "partitioner": "murmur2_random",
    }
    config.update(overrides)
    return Producer(config)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()

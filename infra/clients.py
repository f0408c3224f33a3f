"""Clients for Kafka and Cassandra, configured from the settings: created at the edges.

Two Kafka producers, with the same guarantees (acks=all, idempotent, the Java client's key
partitioner):
- kafka-python (``kafka_producer``), the design's client, wherever a few records go out:
  the speed layer's live updates, tools and tests;
- confluent-kafka (``confluent_producer``), the collector's, on its hot path: librdkafka
  batches, checksums and does its I/O in native threads, outside the GIL, where
  kafka-python spent most of a request's CPU in Python (BENCHMARKS.md, the collector).
Reading and creating topics (``TopicReader``, ``end_offsets``, ``create_topics``) is
kafka-python's too.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, ReconnectionPolicy
from confluent_kafka import Producer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.consumer.fetcher import ConsumerRecord

from infra.settings import Settings

log = logging.getLogger(__name__)


class _Steady(ReconnectionPolicy):
    """Reconnect every 2 s: a restarted local node should be picked up quickly."""

    def new_schedule(self) -> Iterator[float]:
        while True:
            yield 2.0


def cassandra_session(settings: Settings, keyspace: str | None = None, connect_timeout: float = 10.0) -> Session:
    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(), request_timeout=20.0)
    cluster = Cluster(
        contact_points=list(settings.cassandra.hosts),
        port=settings.cassandra.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        reconnection_policy=_Steady(),
        connect_timeout=connect_timeout,
        protocol_version=5,
    )
    return cluster.connect(keyspace)


@contextmanager
def cassandra_keyspace(settings: Settings) -> Iterator[Session]:
    """A session on the configured keyspace, shut down when the block ends."""
    session = cassandra_session(settings, settings.cassandra.keyspace)
    try:
        yield session
    finally:
        session.cluster.shutdown()


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def kafka_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """An idempotent kafka-python producer that waits for all in-sync replicas (acks=all)."""
    config: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka.servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        client_id="parallax",
    )
    config.update(overrides)
    return KafkaProducer(**config)


def confluent_producer(settings: Settings, **overrides: Any) -> Producer:
    """The same guarantees with librdkafka; murmur2 of the key, as kafka-python's partitioner,
    so a key lands in the same partition whichever client wrote it. Delivery reports are
    served by the caller's poll()."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "client.id": "parallax",
        "partitioner": "murmur2_random",
    }
    config.update(overrides)
    return Producer(config)


def group_consumer(settings: Settings, topics: Sequence[str], group_id: str, *, wait_s: float = 30.0,
                   **config: Any) -> KafkaConsumer:
    """A consumer of ``topics`` in the consumer group ``group_id``. It joins the group only
    once it knows every topic's partitions: a group leader that assigns before its metadata
    has them gives its members no partition, and kafka-python would not notice until its
    next metadata refresh (5 minutes by default). Metadata is read again every 10 s, so a
    change of partitions rebalances soon."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.servers, group_id=group_id,
                             metadata_max_age_ms=10_000, **config)
    deadline = time.monotonic() + wait_s
    while any(not consumer.partitions_for_topic(t) for t in topics) and time.monotonic() < deadline:
        time.sleep(0.2)
    consumer.subscribe(list(topics))
    return consumer


def create_topics(settings: Settings, topics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Create those of ``topics`` (name -> ``{"partitions": n, "config": {...}}``, as in
    ``schemas/topics.json``) that Kafka lacks, and give an existing one the partitions it
    lacks (never fewer: a key's partition would change) and the config values it differs
    in (a retention changed in the file reaches the running topic); returns the names created."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers, client_id="parallax-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, num_partitions=spec["partitions"],
                           replication_factor=settings.kafka.replication_factor,
                           topic_configs=dict(spec.get("config", {})))
                  for name, spec in topics.items() if name not in existing]
        if wanted:
            admin.create_topics(wanted)
            log.info("created Kafka topics: %s", ", ".join(t.name for t in wanted))
        present = [name for name in topics if name in existing]
        counts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(present)} if present else {}
        grow = {name: NewPartitions(topics[name]["partitions"]) for name, n in counts.items()
                if n < topics[name]["partitions"]}
        if grow:
            admin.create_partitions(grow)
            log.info("added partitions: %s", ", ".join(f"{n} now {p.total_count}" for n, p in grow.items()))
        _align_configs(admin, {name: dict(topics[name].get("config", {})) for name in present})
        return [t.name for t in wanted]
    finally:
        admin.close()


def _align_configs(admin: KafkaAdminClient, wanted: Mapping[str, Mapping[str, str]]) -> None:
    """Set the topic configs of ``wanted`` (topic -> {key: value}) that differ on the broker."""
    wanted = {name: config for name, config in wanted.items() if config}
    if not wanted:
        return
    current = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=dict.fromkeys(config))
                                      for name, config in wanted.items()], config_filter="all").get("topic", {})
    changes = {name: {k: str(v) for k, v in config.items() if current.get(name, {}).get(k, {}).get("value") != str(v)}
               for name, config in wanted.items()}
    changes = {name: config for name, config in changes.items() if config}
    if changes:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=config)
                             for name, config in changes.items()])
        log.info("changed topic configs: %s", "; ".join(
            f"{name} {', '.join(f'{k}={v}' for k, v in config.items())}" for name, config in changes.items()))


def delete_topics(settings: Settings, names: Iterable[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers, client_id="parallax-admin")
    try:
        admin.delete_topics(list(names))
    finally:
        admin.close()


class TopicReader:
    """Every partition of one topic, read from where the caller seeks: ``read_to_end``
    returns the records up to where the topic ends at the time of the call (what Kafka
    acknowledged is all there), ``follow`` the new ones as they arrive."""

    def __init__(self, settings: Settings, topic: str, client_id: str = "parallax-reader") -> None:
        self.topic = topic
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka.servers, enable_auto_commit=False,
                                      client_id=client_id)
        partitions = self.consumer.partitions_for_topic(topic)
        if not partitions:
            self.consumer.close()
            raise LookupError(f"Kafka has no topic {topic!r} (run `parallax stack up`)")
        self.parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.parts)

    def end_offsets(self) -> dict[int, int]:
        return {tp.partition: offset for tp, offset in self.consumer.end_offsets(self.parts).items()}

    def first_offsets_from(self, at: datetime) -> dict[int, int]:
        """Per partition, the first offset of a record Kafka received at or after ``at``
        (the partition's end where none was): every record before it came earlier."""
        found = self.consumer.offsets_for_times({tp: int(at.timestamp() * 1000) for tp in self.parts})
        ends = self.consumer.end_offsets(self.parts)
        return {tp.partition: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in self.parts}

    def beginning_offsets(self) -> dict[int, int]:
        return {tp.partition: offset for tp, offset in self.consumer.beginning_offsets(self.parts).items()}

    def seek_to_end(self) -> TopicReader:
        for tp, offset in self.consumer.end_offsets(self.parts).items():
            self.consumer.seek(tp, offset)
        return self

    def seek_to_beginning(self) -> TopicReader:
        self.consumer.seek_to_beginning(*self.parts)
        return self

    def seek_back(self, records: int) -> TopicReader:
        """To ``records`` before the end of each partition (or its beginning)."""
        ends, begins = self.consumer.end_offsets(self.parts), self.consumer.beginning_offsets(self.parts)
        for tp in self.parts:
            self.consumer.seek(tp, max(begins[tp], ends[tp] - records))
        return self

    def read_to_end(self) -> list[ConsumerRecord]:
        ends = self.consumer.end_offsets(self.parts)
        out: list[ConsumerRecord] = []
        while any(self.consumer.position(tp) < end for tp, end in ends.items()):
            for batch in self.consumer.poll(timeout_ms=1000).values():
                out.extend(batch)
        return out

    def follow(self) -> Iterator[ConsumerRecord]:
        """Records as they arrive, from the current positions, until the caller stops."""
        while True:
            for batch in self.consumer.poll(timeout_ms=1000).values():
                yield from batch

    def close(self) -> None:
        self.consumer.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Where each partition of ``topic`` ends now."""
    reader = TopicReader(settings, topic, client_id="parallax-offsets")
    try:
        return reader.end_offsets()
    finally:
        reader.close()

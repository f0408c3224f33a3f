"""What the collector's steps talk to: the Kafka producer and the Cassandra-backed
registries (created lazily once per process, so that each server worker, after fork, gets
its own), the offline country database, the rate limits; and how it tells the operator
(``OutageLog``) and a load balancer (``Health``) that Kafka or Cassandra is away."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from cassandra.cluster import Session

from collector import metrics
from collector.enrichment import CountryDb
from collector.kafka_sink import KafkaSink, SinkClosed, connect, to_json
from collector.ratelimit import RateLimits
from collector.registry import DailySalt, SiteRegistry
from infra.clients import cassandra_session
from infra.proc import port_open
from infra.settings import Settings
from store.registry import Registry, VisitorSalts

log = logging.getLogger(__name__)

# After a failed attempt to reach Kafka, requests fail at once for this long instead of
# each waiting for another attempt.
_RETRY_PRODUCER_S = 2.0


class KafkaUnavailable(Exception):
    pass


class OutageLog:
    """Kafka refusing records, told to the operator once every 10 s with a count, and once
    when it acknowledges again; not once a request (the Kafka clients' own logs are
    silenced in collector.wsgi: they log every failed connection)."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._lock = threading.Lock()
        self._refused = 0  # since the outage began
        self._since_log = 0
        self._logged_at = -every_s

    def failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._refused += 1
            self._since_log += 1
            if now - self._logged_at < self.every_s:
                return
            count, self._since_log, self._logged_at = self._since_log, 0, now
        log.warning("Kafka did not acknowledge: %d request(s) answered 503 (retry later) in the last %.0f s; "
                    "last error: %s", count, self.every_s, exc)

    def acknowledged(self) -> None:
        if not self._refused:  # the usual case: no lock
            return
        with self._lock:
            refused, self._refused, self._since_log, self._logged_at = self._refused, 0, 0, -self.every_s
        if refused:
            log.info("Kafka acknowledges again; %d request(s) were answered 503 while it could not", refused)


class Resources:
    """One collector process's Kafka producer, registries, country database and rate limits."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.countries = CountryDb(settings.paths.geoip_db)
        self.limits = RateLimits(settings.collector.rate_limit_ip, settings.collector.rate_limit_site)
        self.outage = OutageLog()
        self._lock = threading.Lock()
        self._producer: KafkaSink | None = None
        self._producer_failed_at = -_RETRY_PRODUCER_S
        self._session: Session | None = None
        self._sites: SiteRegistry | None = None
        self._salts: DailySalt | None = None

    def _registries(self) -> tuple[SiteRegistry, DailySalt]:
        with self._lock:
            if self._sites is None or self._salts is None:
                keyspace = self.settings.cassandra.keyspace
                self._session = cassandra_session(self.settings, keyspace)
                self._sites = SiteRegistry(Registry(self._session, keyspace))
                self._salts = DailySalt(VisitorSalts(self._session, keyspace))
            return self._sites, self._salts

    @property
    def sites(self) -> SiteRegistry:
        return self._registries()[0]

    @property
    def salts(self) -> DailySalt:
        return self._registries()[1]

    def producer(self) -> KafkaSink:
        with self._lock:
            if self._producer is None:
                # Creating one waits for Kafka (up to 5 s), holding the lock: while Kafka is
                # away, the requests queued behind a failed attempt fail at once instead of
                # each waiting in turn.
                if time.monotonic() - self._producer_failed_at < _RETRY_PRODUCER_S:
                    raise KafkaUnavailable("Kafka was unreachable moments ago")
                try:
                    self._producer = connect(self.settings, timeout_s=5.0)
                except Exception as exc:
                    self._producer_failed_at = time.monotonic()
                    raise KafkaUnavailable(str(exc)) from exc
            return self._producer

    def retire(self, sink: KafkaSink) -> None:
        """Drop a producer that failed to deliver: the next request makes a fresh one (a
        producer's idempotence state after a broker restart is best not relied on; a new
        one starts clean). The old one is purged and closed in the background: the requests
        still waiting on it are answered 503 at once."""
        with self._lock:
            if self._producer is not sink:
                return  # another request retired it already
            self._producer = None
        sink.retire()

    def produce_all(self, records: list[tuple[str, bytes, Any]]) -> None:
        """Send and wait for every acknowledgement; any failure -> KafkaUnavailable. A record
        whose acknowledgement did not come in time may still reach Kafka later: its sender
        retries with the same event_id, and both layers drop the repeat."""
        if not records:
            return
        payloads = [(topic, key, to_json(value)) for topic, key, value in records]
        sink = self.producer()
        started = time.perf_counter()
        try:
            acks = sink.send(payloads)
        except BufferError as exc:  # librdkafka's queue is full: Kafka is slow, not the producer broken
            raise KafkaUnavailable(f"producer queue full: {exc}") from exc
        except SinkClosed as exc:  # retired meanwhile by another request
            raise KafkaUnavailable(str(exc)) from exc
        except Exception as exc:  # KafkaException: e.g. a fatal idempotence error
            self.retire(sink)
            raise KafkaUnavailable(str(exc)) from exc
        if not acks.done.wait(self.settings.collector.kafka_ack_timeout_s + 1.0) or acks.error is not None:
            self.retire(sink)
            raise KafkaUnavailable(str(acks.error or "no acknowledgement in time"))
        metrics.KAFKA_ACK_SECONDS.observe(time.perf_counter() - started)

    def close(self) -> None:
        """Retire the producer (purged: call once nothing is waiting on it) and shut the
        Cassandra session down."""
        with self._lock:
            sink, self._producer = self._producer, None
            session, self._session, self._sites, self._salts = self._session, None, None, None
        if sink is not None:
            sink.retire()
        if session is not None:
            session.cluster.shutdown()


class Health:
    """Whether Kafka and Cassandra answer a TCP connection: cheap, and cached a few seconds
    so that a load balancer polling every worker costs nothing."""

    def __init__(self, settings: Settings, ttl: float = 5.0) -> None:
        self.ttl = ttl
        kafka = [tuple(a.rsplit(":", 1)) for a in settings.kafka.servers]
        self.targets = {"kafka": [(h, int(p)) for h, p in kafka],
                        "cassandra": [(h, settings.cassandra.port) for h in settings.cassandra.hosts]}
        self._lock = threading.Lock()
        self._checked: tuple[float, dict[str, str]] | None = None

    def state(self) -> dict[str, str]:
        with self._lock:
            if self._checked is not None and time.monotonic() - self._checked[0] < self.ttl:
                return self._checked[1]
        found = {name: "ok" if any(port_open(h, p, timeout=1.0) for h, p in hosts) else "unreachable"
                 for name, hosts in self.targets.items()}
        with self._lock:
            self._checked = (time.monotonic(), found)
        return found

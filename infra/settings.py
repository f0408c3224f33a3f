"""One settings object per process, read from the environment with local defaults.

Every value can be overridden with a ``PARALLAX_*`` variable, so the same code runs
against a real cluster by configuration alone (Kafka bootstrap servers, Cassandra contact
points and replication, Spark master URL).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PARALLAX_{name.upper()}", default)


@dataclass(frozen=True)
class Settings:
    # Where the local stack keeps its state and logs (git-ignored) and where downloads are
    # cached (outside the clone, so a fresh clone reuses them).
    var_dir: Path = field(default_factory=lambda: Path(_env("var_dir", str(REPO_ROOT / "var"))))
    cache_dir: Path = field(
        default_factory=lambda: Path(
            _env("cache_dir", str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "parallax"))
        )
    )

    # Kafka
    kafka_version: str = field(default_factory=lambda: _env("kafka_version", "4.3.1"))
    kafka_bootstrap: str = field(default_factory=lambda: _env("kafka_bootstrap", "127.0.0.1:9092"))
    kafka_controller_port: int = field(default_factory=lambda: int(_env("kafka_controller_port", "9093")))
    kafka_heap: str = field(default_factory=lambda: _env("kafka_heap", "512m"))
    topic_events: str = field(default_factory=lambda: _env("topic_events", "events"))
    topic_invalid: str = field(default_factory=lambda: _env("topic_invalid", "events.invalid"))
    topic_live: str = field(default_factory=lambda: _env("topic_live", "metrics.live"))
    topic_notifications: str = field(default_factory=lambda: _env("topic_notifications", "notifications"))

    # Cassandra
    cassandra_version: str = field(default_factory=lambda: _env("cassandra_version", "5.0.9"))
    cassandra_hosts: tuple[str, ...] = field(
        default_factory=lambda: tuple(_env("cassandra_hosts", "127.0.0.1").split(","))
    )
    cassandra_port: int = field(default_factory=lambda: int(_env("cassandra_port", "9042")))
    cassandra_storage_port: int = field(default_factory=lambda: int(_env("cassandra_storage_port", "7000")))
    cassandra_heap: str = field(default_factory=lambda: _env("cassandra_heap", "1G"))
    keyspace: str = field(default_factory=lambda: _env("keyspace", "parallax"))
    replication_factor: int = field(default_factory=lambda: int(_env("replication_factor", "1")))

    # Spark
    spark_master: str = field(default_factory=lambda: _env("spark_master", "local[2]"))
    spark_driver_memory: str = field(default_factory=lambda: _env("spark_driver_memory", "2g"))
    batch_shuffle_partitions: int = field(default_factory=lambda: int(_env("batch_shuffle_partitions", "32")))
    speed_trigger: str = field(default_factory=lambda: _env("speed_trigger", "5 seconds"))
    # The most events one speed micro-batch takes. A layer behind its trigger catches up in
    # batches this large; keep it above the trigger's worth of events at the peak rate.
    speed_max_batch_events: int = field(default_factory=lambda: int(_env("speed_max_batch_events", "500000")))
    archive_trigger: str = field(default_factory=lambda: _env("archive_trigger", "30 seconds"))
    # Micro-batches of state the checkpoints keep (Spark's default is 100). Restarting needs
    # only the last; each kept one holds state files that compaction has since rewritten, and
    # with visits that end, 100 of them outgrow the disk at 20,000 events/s (BENCHMARKS.md).
    speed_state_versions: int = field(default_factory=lambda: int(_env("speed_state_versions", "20")))
    watermark: str = field(default_factory=lambda: _env("watermark", "10 minutes"))
    starting_offsets: str = field(default_factory=lambda: _env("starting_offsets", "earliest"))
    # Inactivity that ends a session, in both layers (views.catalogue.DEFAULT_SESSION_GAP).
    session_gap: str = field(default_factory=lambda: _env("session_gap", "30 minutes"))
    # How often the speed layer looks for changed goals (it restarts its views query on one).
    goals_refresh_s: float = field(default_factory=lambda: float(_env("goals_refresh_s", "30")))

    # Airflow
    airflow_port: int = field(default_factory=lambda: int(_env("airflow_port", "8080")))

    # HTTP services
    collector_port: int = field(default_factory=lambda: int(_env("collector_port", "8001")))
    serving_port: int = field(default_factory=lambda: int(_env("serving_port", "8000")))
    # The demo's sample site (infra/sample_site), carrying the tracker.
    sample_site_port: int = field(default_factory=lambda: int(_env("sample_site_port", "8002")))
    secret_key: str = field(default_factory=lambda: _env("secret_key", "dev-only-change-me"))
    max_events_per_request: int = field(default_factory=lambda: int(_env("max_events_per_request", "100")))
    max_body_bytes: int = field(default_factory=lambda: int(_env("max_body_bytes", str(256 * 1024))))
    kafka_ack_timeout_s: float = field(default_factory=lambda: float(_env("kafka_ack_timeout_s", "10")))
    # Collector flood guards (`limits` notation, e.g. "600/minute"; "off" disables), counted in
    # each gunicorn worker's memory: with W workers a client may get up to W x the limit through.
    # Per client address it counts requests, per site events. The defaults only stop floods
    # far beyond what one worker can take, so the benchmark (30,000 events/s in 20-event
    # batches from one address to one site) is never throttled; tighten them for a public collector.
    rate_limit_ip: str = field(default_factory=lambda: _env("rate_limit_ip", "3000/second"))
    rate_limit_site: str = field(default_factory=lambda: _env("rate_limit_site", "60000/second"))
    # Clock sanity: an event dated more than this ahead of the collector's clock is rejected
    # (clock_skew); one older than `late_after_s` when it arrives is accepted and counted late.
    # The default lateness is the speed layer's default watermark: such an event most likely
    # misses the live views, and only the nightly batch counts it.
    max_clock_skew_s: float = field(default_factory=lambda: float(_env("max_clock_skew_s", "600")))
    late_after_s: float = field(default_factory=lambda: float(_env("late_after_s", "600")))
    # How many reverse proxies in front of the collector append to X-Forwarded-For. 0: the
    # header is ignored (any client can send one) and the peer's address is the client's.
    trusted_proxies: int = field(default_factory=lambda: int(_env("trusted_proxies", "0")))

    @property
    def master_dir(self) -> Path:
        """The master dataset: raw events, Parquet, append-only, partitioned by date."""
        return Path(_env("master_dir", str(self.var_dir / "master" / "events")))

    @property
    def checkpoint_dir(self) -> Path:
        return Path(_env("checkpoint_dir", str(self.var_dir / "checkpoints")))

    @property
    def geoip_db(self) -> Path:
        """The offline IP -> country database (MaxMind DB format) the collector reads;
        `parallax stack fetch` installs DB-IP Lite Country here."""
        return Path(_env("geoip_db", str(self.cache_dir / "geoip" / "dbip-country.mmdb")))

    @property
    def airflow_home(self) -> Path:
        return Path(_env("airflow_home", str(self.var_dir / "airflow")))

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        host, port = self.kafka_bootstrap.split(",")[0].rsplit(":", 1)
        return host, int(port)

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **changes)

    def describe(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if f.name != "secret_key"}


def load_settings() -> Settings:
    return Settings()

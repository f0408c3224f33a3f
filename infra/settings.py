"""One settings object per process, read once from the environment with local defaults.

Every value can be overridden with a ``PARALLAX_*`` variable, so the same code runs against
a real cluster by configuration alone (Kafka bootstrap servers, Cassandra contact points and
replication, Spark master URL). ``load_settings()`` resolves every field when it is called
(paths that default to places under ``PARALLAX_VAR_DIR`` included), validates it
(pydantic-settings: a bad value names its variable), and returns an immutable object that
the process's entry point passes down. `parallax settings` prints all of it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(prefix: str) -> SettingsConfigDict:
    # populate_by_name: a group can also be built from field names (tests, overrides).
    return SettingsConfigDict(env_prefix=prefix, frozen=True, extra="ignore", populate_by_name=True)


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "parallax"


class PathSettings(BaseSettings):
    """Where state, logs and downloads live. ``var_dir`` is git-ignored; the download cache
    is outside the clone, so a fresh clone reuses it."""
    model_config = _env("PARALLAX_")

    var_dir: Path = REPO_ROOT / "var"
    cache_dir: Path = Field(default_factory=_cache_home)
    # The master dataset: raw events, a Delta Lake table partitioned by date (infra/master.py).
    master_dir: Path = Field(default_factory=lambda data: data["var_dir"] / "master" / "events")
    checkpoint_dir: Path = Field(default_factory=lambda data: data["var_dir"] / "checkpoints")
    airflow_home: Path = Field(default_factory=lambda data: data["var_dir"] / "airflow")
    # The offline IP -> country database (MaxMind DB format) the collector reads; `parallax
    # stack fetch` installs DB-IP Lite Country here.
    geoip_db: Path = Field(default_factory=lambda data: data["cache_dir"] / "geoip" / "dbip-country.mmdb")


class KafkaSettings(BaseSettings):
    model_config = _env("PARALLAX_KAFKA_")

    version: str = "4.3.1"
    bootstrap: str = "127.0.0.1:9092"
    controller_port: int = 9093
    heap: str = "512m"
    # One variable for both: the replicas of the Kafka topics and of the Cassandra keyspace.
    replication_factor: int = Field(1, validation_alias="PARALLAX_REPLICATION_FACTOR")
    topic_events: str = Field("events", validation_alias="PARALLAX_TOPIC_EVENTS")
    topic_invalid: str = Field("events.invalid", validation_alias="PARALLAX_TOPIC_INVALID")
    topic_live: str = Field("metrics.live", validation_alias="PARALLAX_TOPIC_LIVE")
    topic_notifications: str = Field("notifications", validation_alias="PARALLAX_TOPIC_NOTIFICATIONS")
    topic_sockets: str = Field("serving.sockets", validation_alias="PARALLAX_TOPIC_SOCKETS")

    @property
    def servers(self) -> list[str]:
        return self.bootstrap.split(",")

    @property
    def host_port(self) -> tuple[str, int]:
        """The first bootstrap server, where the local broker listens."""
        host, port = self.servers[0].rsplit(":", 1)
        return host, int(port)

    def topic_names(self) -> dict[str, str]:
        """Each topic of ``schemas/topics.json`` (by its key there) and its configured name."""
        return {"events": self.topic_events, "events.invalid": self.topic_invalid,
                "metrics.live": self.topic_live, "notifications": self.topic_notifications,
                "serving.sockets": self.topic_sockets}


class CassandraSettings(BaseSettings):
    model_config = _env("PARALLAX_CASSANDRA_")

    version: str = "5.0.9"
    hosts: Annotated[tuple[str, ...], NoDecode] = ("127.0.0.1",)
    port: int = 9042
    storage_port: int = 7000
    heap: str = "1G"
    keyspace: str = Field("parallax", validation_alias="PARALLAX_KEYSPACE")
    replication_factor: int = Field(1, validation_alias="PARALLAX_REPLICATION_FACTOR")

    @field_validator("hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return tuple(h.strip() for h in value.split(",") if h.strip()) if isinstance(value, str) else value


class SparkSettings(BaseSettings):
    model_config = _env("PARALLAX_SPARK_")

    master: str = "local[2]"
    driver_memory: str = "2g"
    batch_shuffle_partitions: int = Field(32, validation_alias="PARALLAX_BATCH_SHUFFLE_PARTITIONS")
    # Inactivity that ends a session, in both layers (views.catalogue.DEFAULT_SESSION_GAP).
    session_gap: str = Field("30 minutes", validation_alias="PARALLAX_SESSION_GAP")


class BatchSettings(BaseSettings):
    """The batch layer's runs beyond the nightly one."""
    model_config = _env("PARALLAX_BATCH_")

    # Late events (committed to the master dataset after their day's batch run) of days up
    # to this old are recomputed by the hourly late-data DAG; older ones are counted and
    # shown (API), and a reprocess run takes them in.
    late_limit_days: int = Field(7, ge=0, validation_alias="PARALLAX_LATE_LIMIT_DAYS")


class SpeedSettings(BaseSettings):
    """The speed layer's streaming queries."""
    model_config = _env("PARALLAX_SPEED_")

    trigger: str = "5 seconds"
    # The most events one micro-batch takes. A layer behind its trigger catches up in
    # batches this large; keep it above the trigger's worth of events at the peak rate.
    max_batch_events: int = 500_000
    archive_trigger: str = Field("30 seconds", validation_alias="PARALLAX_ARCHIVE_TRIGGER")
    # Micro-batches of state the checkpoints keep (Spark's default is 100). Restarting needs
    # only the last; each kept one holds state files that compaction has since rewritten,
    # so the disk the checkpoints take grows with this (README: sizing the speed layer).
    state_versions: int = 20
    watermark: str = Field("10 minutes", validation_alias="PARALLAX_WATERMARK")
    starting_offsets: str = Field("earliest", validation_alias="PARALLAX_STARTING_OFFSETS")
    # How often the speed layer looks for changed goals (it restarts its views query on one).
    goals_refresh_s: float = Field(30.0, validation_alias="PARALLAX_GOALS_REFRESH_S")


class CollectorSettings(BaseSettings):
    model_config = _env("PARALLAX_")

    port: int = Field(8001, validation_alias="PARALLAX_COLLECTOR_PORT")
    # Where browsers reach the collector (the tracker snippet the serving layer shows names
    # it); default: this machine's collector port.
    public_url: str = Field("", validation_alias="PARALLAX_COLLECTOR_PUBLIC_URL")
    max_events_per_request: int = 100
    max_body_bytes: int = 256 * 1024
    kafka_ack_timeout_s: float = 10.0
    # Flood guards (`limits` notation, e.g. "600/minute"; "off" disables), counted in each
    # gunicorn worker's memory: with W workers a client may get up to W x the limit through.
    # Per client address they count requests, per site events. The defaults only stop
    # floods far beyond what one worker can take; tighten them for a public collector.
    rate_limit_ip: str = "3000/second"
    rate_limit_site: str = "60000/second"
    # Clock sanity: an event dated more than this ahead of the collector's clock is rejected
    # (clock_skew); one older than `late_after_s` when it arrives is accepted and counted
    # late. The default lateness is the speed layer's default watermark: such an event most
    # likely misses the live views, and only the batch layer counts it.
    max_clock_skew_s: float = 600.0
    late_after_s: float = 600.0
    # How many reverse proxies in front of the collector append to X-Forwarded-For. 0: the
    # header is ignored (any client can send one) and the peer's address is the client's.
    trusted_proxies: int = 0

    @property
    def url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")


class ServingSettings(BaseSettings):
    model_config = _env("PARALLAX_SERVING_")

    port: int = 8000
    # Signs the CSRF tokens. Unset: generated once, at random, into var/serving/secret_key
    # (every serving process of this machine reads it); set it to share it across machines.
    secret_key: SecretStr | None = None
    # A login lasts this long (seconds), whatever is done meanwhile; a browser that has not
    # logged in keeps its session (its CSRF token) this long.
    session_lifetime_s: int = Field(7 * 86_400, ge=60)
    anonymous_session_s: int = Field(3_600, ge=60)
    # Login attempts (`limits` notation, counted across every serving process): per client
    # address, all of them; per account, the failed ones.
    login_limit_ip: str = "20/minute"
    login_limit_account: str = "5/minute;30/hour"
    # Origins (scheme://host[:port]) other than the serving layer's own that may call the
    # API from a browser and open Socket.IO connections. None by default: CORS stays closed.
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # Reverse proxies in front of the serving layer that set X-Forwarded-For/-Proto (0:
    # none; the headers are ignored).
    trusted_proxies: int = 0
    # How often each serving process checks its sockets' access again (a logout, a revoked
    # token or a removed membership ends a socket's access within this many seconds).
    socket_recheck_s: float = Field(5.0, gt=0)
    # How often each process pushes the freshness of the sites its sockets watch.
    freshness_push_s: float = Field(2.0, gt=0)
    # Freshness: measured at most this often per process; the speed layer counts as stalled
    # when it is behind Kafka and its offsets have not moved for stall_after_s.
    freshness_refresh_s: float = Field(2.0, gt=0)
    stall_after_s: float = Field(60.0, gt=0)
    # Answers computed on demand from the master dataset (DuckDB): the most events one
    # query may read, and each query's threads and memory.
    archive_max_events: int = Field(100_000_000, gt=0)
    archive_threads: int = Field(2, ge=1)
    archive_memory: str = "1GB"
    # Answers computed from the master dataset follow its commits at most this often
    # (a 30-day answer of a site at 1 M events a day reads 30 M events each time).
    archive_refresh_s: float = Field(300.0, ge=0)
    # Report answers kept per process while the data they come from is unchanged.
    answer_cache_entries: int = Field(1024, ge=0)
    # A site's zone and batch boundary are read at most this often (seconds) per process.
    meta_ttl_s: float = Field(2.0, ge=0)
    # Who a token or a session belongs to, and their sites, are read at most this often per
    # process: an account change made elsewhere (another process, the CLI) takes effect
    # within it; one made through the process, at once. 0: read on every request.
    auth_cache_s: float = Field(1.0, ge=0)
    # The dashboard's built assets (`npm run build` in serving_layer/dashboard, run by
    # `make setup`); another folder serves another build.
    dashboard_dir: Path = REPO_ROOT / "serving_layer" / "dashboard" / "dist"

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip()) if isinstance(value, str) else value


class AlertSettings(BaseSettings):
    """The alert evaluator and the notifications it sends (`parallax alerts`)."""
    model_config = _env("PARALLAX_ALERTS_")

    # A site's rules are evaluated on its live updates, at most this often (seconds), and
    # every tick_s whatever arrives (so a rule resolves, or a drop fires, on a quiet site).
    min_interval_s: float = Field(1.0, ge=0)
    tick_s: float = Field(30.0, gt=0)
    # System alarms: the speed layer stalled or behind, the collector refusing events.
    speed_stalled_after_s: float = Field(300.0, gt=0)
    speed_behind_s: float = Field(600.0, gt=0)
    collector_refusing_after_s: float = Field(60.0, gt=0)
    # A recomputed day whose speed-layer figure was off by more than this (a fraction: 0.05
    # is 5%) for a measure raises an alarm.
    drift_threshold: float = Field(0.05, ge=0)
    # Where notifications link to (the serving layer as users reach it); default: this
    # machine's serving port.
    public_url: str = ""
    # Email (SMTP). No host: email is not sent (the notification is still stored and pushed).
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_user: str = ""
    smtp_password: SecretStr | None = None
    smtp_from: str = "parallax@localhost"
    # Webhooks: a POST signed with HMAC-SHA256 of the body (the rule's secret), retried
    # with exponential backoff this many times.
    webhook_attempts: int = Field(5, ge=1)
    webhook_backoff_s: float = Field(1.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0)
    # The daily digest by email, at this hour (UTC) for users who chose it.
    digest_hour_utc: int = Field(7, ge=0, le=23)


class CompactionSettings(BaseSettings):
    """The master dataset's compaction and clean-up (``batch_layer/compact.py``, the DAG
    ``parallax_compaction``)."""
    model_config = _env("PARALLAX_COMPACTION_")

    # A date partition holding more files than this is compacted by the daily run. The
    # archive query writes a few files (one per Kafka partition) every trigger: thousands a
    # day at 30 s. A compacted day holds a few files of up to 1 GB, so the late events of a
    # few micro-batches do not get a large partition rewritten.
    min_files: int = Field(100, ge=1)
    # The most partitions one run compacts, newest first (yesterday's always among them):
    # the first run over a long uncompacted archive stays bounded, the rest wait a night.
    max_days: int = Field(7, ge=1)
    # VACUUM deletes the files that left the table (replaced by a compaction, an erasure)
    # more than this long ago, and the files no commit ever listed (failed micro-batches).
    # 7 days: the `events` topic's retention (schemas/topics.json), so an erased event's
    # old file leaves the disk about when its last copy leaves Kafka (README: compaction).
    # Never lower than Delta's safety check (the table's deletedFileRetentionDuration, a
    # week): a reader or writer still working on an older version may need those files.
    vacuum_retention_hours: int = Field(168, ge=168)


class AirflowSettings(BaseSettings):
    model_config = _env("PARALLAX_AIRFLOW_")

    port: int = 8080
    # Spark jobs the DAGs may run at once (the `parallax_spark` pool): one on a small
    # machine, so that a compaction, an erasure and a nightly run queue instead of sharing
    # two cores (and two recomputes of one site-day never interleave their writes).
    spark_slots: int = Field(1, ge=1)


class DemoSettings(BaseSettings):
    model_config = _env("PARALLAX_")

    # The demo's sample site (tools/sample_site), carrying the tracker.
    sample_site_port: int = 8002


class Settings(BaseModel):
    """Every setting of a process, by concern. Immutable; ``replace`` makes a changed copy."""
    model_config = ConfigDict(frozen=True)

    paths: PathSettings
    kafka: KafkaSettings
    cassandra: CassandraSettings
    spark: SparkSettings
    batch: BatchSettings
    speed: SpeedSettings
    collector: CollectorSettings
    serving: ServingSettings
    alerts: AlertSettings
    compaction: CompactionSettings
    airflow: AirflowSettings
    demo: DemoSettings

    def replace(self, **groups: dict[str, Any]) -> Settings:
        """A copy with some fields changed, by group: ``replace(kafka={"topic_events": "t"})``."""
        changed = {}
        for name, changes in groups.items():
            group = getattr(self, name)
            unknown = set(changes) - set(type(group).model_fields)
            if unknown:
                raise ValueError(f"settings group {name!r} has no field(s) {', '.join(sorted(unknown))}")
            changed[name] = group.model_copy(update=changes)
        return self.model_copy(update=changed)

    def describe(self) -> dict[str, dict[str, str]]:
        """Every field's effective value, by group, as `parallax settings` prints them."""
        return {name: {field: ", ".join(value) if isinstance(value, tuple) else str(value)
                       for field, value in getattr(self, name)}
                for name in type(self).model_fields}


class SettingsError(ValueError):
    """A PARALLAX_* variable whose value is not what its setting takes."""


def _variable(group: type[BaseSettings], field: str) -> str:
    alias = group.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"{group.model_config['env_prefix']}{field}".upper()


def load_settings() -> Settings:
    """Read every ``PARALLAX_*`` variable now; defaults for the rest. A bad value raises
    ``SettingsError`` naming the variable."""
    groups = {name: field.annotation for name, field in Settings.model_fields.items()}
    loaded = {}
    for name, group in groups.items():
        try:
            loaded[name] = group()
        except ValidationError as exc:
            problems = []
            for e in exc.errors():
                field = str(e["loc"][0]) if e["loc"] else ""
                variable = _variable(group, field) if field in group.model_fields else field
                problems.append(f"{variable}={e.get('input')!r}: {e['msg']}")
            raise SettingsError("; ".join(problems)) from None
    return Settings(**loaded)

"""The speed layer: Kafka `events` -> Cassandra speed views + the master dataset archive.

Run it with ``parallax speed``. Three checkpointed streaming queries read the same topic:
- ``archive``: every parsed event, appended as Parquet partitioned by event date (the
  immutable master dataset the batch layer recomputes from; it keeps late events too);
- ``views``: events deduplicated within the watermark, aggregated into minute buckets by
  ``views.transforms.views`` (every event view, goals included), upserted into
  ``speed_views`` and published to `metrics.live` after every micro-batch;
- ``sessions``: the same events grouped into sessions by Spark's session windows (append
  mode: a session is emitted once the watermark passes its end), whose measures are
  upserted into the same minute rows (see ``speed_layer.sessions``).
A restart resumes every query from its checkpoint: nothing is skipped, nothing counted
twice. Events behind the watermark are dropped (the batch layer counts them); how many,
per micro-batch, goes to ``speed_dropped``.
"""
from __future__ import annotations

import logging
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQueryListener

from speed_layer.sessions import SpeedSessionSink
from speed_layer.sinks import SpeedViewSink
from views.catalogue import SPEED_GRANULARITY
from views.goals import Goal, read_goals
from views.store import read_boundaries
from views.transforms import dedupe_events, parse_events, session_rows, views

log = logging.getLogger(__name__)

# The shape of each stateful query's state (and, for sessions, of what its sink keeps in
# Cassandra). Bump it with every change Spark cannot restore from an old checkpoint (new
# grouping keys or aggregates): the query then starts a new checkpoint and rebuilds its
# speed views from Kafka (see ``query_start``).
# 4: events deduplicated on (event_id, event_time), forgotten once the watermark passes them.
VIEWS_QUERY_VERSION = 4
# 2: the sink keeps running sums per minute (speed_session_sums), not every session.
# 3: events deduplicated on (event_id, event_time), as the views query.
SESSIONS_QUERY_VERSION = 3
VERSIONS = {"speed_views": ("VIEWS_QUERY_VERSION", VIEWS_QUERY_VERSION),
            "speed_sessions": ("SESSIONS_QUERY_VERSION", SESSIONS_QUERY_VERSION)}
RESTORE_ERRORS = ("STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE", "STATE_STORE_VALUE_SCHEMA_NOT_COMPATIBLE",
                  "STATE_SCHEMA", "StateSchemaNotCompatible", "INCOMPATIBLE_DATA_FOR_STATE")
# The fields the sessions query reads: parsing only these costs less than the whole event.
SESSION_FIELDS = ("type", "path", "visitor_id")
def query_checkpoint(checkpoint_dir: Path, query: str, version: int | None = None) -> Path:
    """The checkpoint of ``query`` ("speed_views" or "speed_sessions") at ``version``."""
    return checkpoint_dir / f"{query}_v{VERSIONS[query][1] if version is None else version}"


def older_checkpoints(checkpoint_dir: Path, query: str, version: int | None = None) -> list[Path]:
    """Checkpoints of earlier versions of ``query`` (the first had no version)."""
    version = VERSIONS[query][1] if version is None else version
    found = []
    for path in sorted(checkpoint_dir.glob(f"{query}*")):
        m = re.fullmatch(rf"{query}(?:_v(\d+))?", path.name)
        if m and path.is_dir() and int(m.group(1) or 1) < version:
            found.append(path)
    return found


def query_start(checkpoint_dir: Path, query: str, boundaries: list[datetime], starting_offsets: str, *,
                rebuild: bool = False, version: int | None = None) -> tuple[dict[str, str], str | None]:
    """Kafka options for a stateful query's first start, and a note for the operator.

    A query whose checkpoint exists resumes from it (the options are ignored). A new
    version of the query rebuilds every speed bucket that reports still read: from the
    earliest batch boundary on (an hour earlier, for stragglers), by Kafka timestamp.
    """
    version = VERSIONS[query][1] if version is None else version
    checkpoint = query_checkpoint(checkpoint_dir, query, version)
    if checkpoint.exists():
        return {"startingOffsets": starting_offsets}, None
    older = older_checkpoints(checkpoint_dir, query, version)
    if not older and not rebuild:
        return {"startingOffsets": starting_offsets}, None
    if boundaries:
        since = min(boundaries) - timedelta(hours=1)
        options = {"startingTimestamp": str(int(since.timestamp() * 1000))}
        origin = f"Kafka offsets at {since.isoformat()} (the earliest batch boundary, less an hour)"
    else:
        options = {"startingOffsets": "earliest"}
        origin = "the earliest offsets Kafka keeps (no batch boundary yet)"
    what = query.removeprefix("speed_")
    reason = (f"the speed {what} query changed (version {version}); its old checkpoint "
              f"{', '.join(str(p) for p in older)} cannot be restored" if older else "rebuild asked for")
    note = (f"{reason}. Rebuilding the speed {what} from {origin} into {checkpoint}: every bucket is rewritten "
            "with its full value. Delete the old checkpoint when the new query has caught up.")
    return options, note


def explain_failure(error: object, checkpoint: Path) -> str | None:
    """A clear message for a query that failed because its checkpoint cannot be restored."""
    text = str(error)
    if not any(marker in text for marker in RESTORE_ERRORS):
        return None
    query = "speed_sessions" if checkpoint.name.startswith("speed_sessions") else "speed_views"
    constant = VERSIONS[query][0]
    return (f"the speed {query.removeprefix('speed_')} query cannot restore its state from {checkpoint}: the "
            f"query's shape changed without a new {constant} (speed_layer/job.py). Way forward: bump {constant}, "
            "or run `parallax speed --rebuild`, which moves the speed layer's checkpoints aside and rebuilds the "
            "speed views from Kafka (README: 'Changing the speed layer').")


def kafka_stream(spark: SparkSession, bootstrap: str, topic: str, start: dict[str, str],
                 max_batch_events: int) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("maxOffsetsPerTrigger", max_batch_events)
    )
    # Only used when a checkpoint is new; afterwards the checkpoint's offsets win.
    for key, value in start.items():
        reader = reader.option(key, value)
    return reader.load()


def archive_frame(raw: DataFrame) -> DataFrame:
    """Parsed events with their UTC event date, the master dataset's partition column."""
    return parse_events(raw).withColumn("date", F.to_date(F.col("event_time")))


def deduped_stream(raw: DataFrame, watermark: str, fields: tuple[str, ...] | None = None) -> DataFrame:
    return dedupe_events(parse_events(raw, fields=fields).withWatermark("event_time", watermark),
                         within_watermark=True)


def speed_view_frame(raw: DataFrame, watermark: str, goals: tuple[Goal, ...] = ()) -> DataFrame:
    return views(deduped_stream(raw, watermark), SPEED_GRANULARITY, exact_visitors=False, goals=goals)


def speed_session_frame(raw: DataFrame, watermark: str, gap: str) -> DataFrame:
    return session_rows(deduped_stream(raw, watermark, SESSION_FIELDS), gap)


@dataclass
class SpeedQueries:
    """The speed layer's streaming queries and how to (re)start them."""

    spark: SparkSession
    settings: Any
    views_start_options: dict[str, str]
    view_sink: Any
    session_sink: Any
    sessions_start_options: dict[str, str] | None = None

    def kafka(self, start: dict[str, str]) -> DataFrame:
        s = self.settings
        return kafka_stream(self.spark, s.kafka_bootstrap, s.topic_events, start, s.speed_max_batch_events)

    def start_archive(self) -> Any:
        s = self.settings
        return (
            archive_frame(self.kafka({"startingOffsets": s.starting_offsets}))
            .writeStream.queryName("archive")
            .format("parquet")
            .partitionBy("date")
            .option("path", str(s.master_dir))
            .option("checkpointLocation", f"{s.checkpoint_dir}/archive")
            .trigger(processingTime=s.archive_trigger)
            .outputMode("append")
            .start()
        )

    def start_views(self, goals: tuple[Goal, ...]) -> Any:
        """The views query. Goals only change the expression before the aggregation, not
        its state, so a restart with new goals resumes from the same checkpoint."""
        s = self.settings
        return (
            speed_view_frame(self.kafka(self.views_start_options), s.watermark, goals)
            .writeStream.queryName("speed_views")
            .outputMode("update")
            .foreachBatch(self.view_sink)
            .option("checkpointLocation", str(query_checkpoint(Path(s.checkpoint_dir), "speed_views")))
            .trigger(processingTime=s.speed_trigger)
            .start()
        )

    def start_sessions(self) -> Any:
        s = self.settings
        return (
            speed_session_frame(self.kafka(self.sessions_start_options or {"startingOffsets": s.starting_offsets}),
                                s.watermark, s.session_gap)
            .writeStream.queryName("speed_sessions")
            .outputMode("append")
            .foreachBatch(self.session_sink)
            .option("checkpointLocation", str(query_checkpoint(Path(s.checkpoint_dir), "speed_sessions")))
            .trigger(processingTime=s.speed_trigger)
            .start()
        )


class DroppedLateListener(StreamingQueryListener):
    """Records how many input rows each micro-batch dropped behind the watermark."""

    def __init__(self, session: Any, keyspace: str) -> None:
        self.session = session
        self.insert = session.prepare(
            f"INSERT INTO {keyspace}.speed_dropped (query, day, query_id, batch_id, dropped, at) "
            "VALUES (?, ?, ?, ?, ?, ?)")

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        dropped = sum(op.numRowsDroppedByWatermark for op in progress.stateOperators)
        if dropped:
            now = datetime.now(timezone.utc)
            log.warning("%s micro-batch %d dropped %d events behind the watermark (left to the batch layer)",
                        progress.name, progress.batchId, dropped)
            try:
                self.session.execute(self.insert, (progress.name, now.date(), str(progress.id), progress.batchId,
                                                   dropped, now))
            except Exception as exc:  # the count is a diagnostic: never let it stop the stream
                log.warning("could not record the dropped count: %s", exc)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass


def move_aside(checkpoint: Path) -> Path:
    """Keep a checkpoint that will be rebuilt, under a dated name, rather than delete it."""
    target = checkpoint.with_name(f"{checkpoint.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
    shutil.move(str(checkpoint), str(target))
    return target


def run(settings: Any, *, rebuild: bool = False) -> int:
    """Entry point: start the queries and run until SIGTERM/SIGINT or a query fails."""
    from infra.clients import cassandra_session, kafka_producer, json_bytes
    from infra.spark import get_session

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    session = cassandra_session(settings, settings.keyspace)
    checkpoints = {query: query_checkpoint(Path(settings.checkpoint_dir), query) for query in VERSIONS}
    if rebuild:
        for path in checkpoints.values():
            if path.exists():
                log.warning("--rebuild: moved the checkpoint %s aside to %s", path.name, move_aside(path))
    boundaries = list(read_boundaries(session, settings.keyspace).values())
    start_options = {}
    for query in VERSIONS:
        start_options[query], note = query_start(Path(settings.checkpoint_dir), query, boundaries,
                                                 settings.starting_offsets, rebuild=rebuild)
        if note:
            log.warning("%s", note)
    producer = kafka_producer(settings, value_serializer=json_bytes)
    spark = get_session(settings, "parallax-speed", with_kafka=True)
    spark.streams.addListener(DroppedLateListener(session, settings.keyspace))
    starter = SpeedQueries(spark, settings, start_options["speed_views"],
                           SpeedViewSink(session, settings.keyspace, producer, settings.topic_live),
                           SpeedSessionSink(session, settings.keyspace), start_options["speed_sessions"])
    goals = read_goals(session, settings.keyspace)
    log.info(
        "speed layer reading %s from %s (watermark %s, trigger %s, session gap %s, %d goals); archive -> %s; "
        "checkpoints in %s", settings.topic_events, settings.kafka_bootstrap, settings.watermark,
        settings.speed_trigger, settings.session_gap, len(goals), settings.master_dir, settings.checkpoint_dir,
    )
    queries = {"archive": starter.start_archive(), "views": starter.start_views(goals),
               "sessions": starter.start_sessions()}
    next_goal_check = time.monotonic() + settings.goals_refresh_s
    failed = failed_query = None
    while not stop.is_set():
        for q in queries.values():
            if not q.isActive:
                failed, failed_query = q.exception() or f"query {q.name} stopped", q.name
                stop.set()
        if not stop.is_set() and time.monotonic() >= next_goal_check:
            next_goal_check = time.monotonic() + settings.goals_refresh_s
            try:
                latest = read_goals(session, settings.keyspace)
            except Exception as exc:  # Cassandra away: keep the goals we have, look again later
                log.warning("could not read the goals (%s); keeping the %d known", exc, len(goals))
                latest = goals
            if latest != goals:
                log.info("goals changed (%d -> %d): restarting the views query with them", len(goals), len(latest))
                goals = latest
                queries["views"].stop()
                queries["views"] = starter.start_views(goals)
        stop.wait(1.0)
    log.info("stopping the speed layer's queries")
    for q in queries.values():
        if q.isActive:
            q.stop()
    producer.close(timeout=10)
    session.cluster.shutdown()
    spark.stop()
    if failed:
        explained = explain_failure(failed, checkpoints.get(failed_query, checkpoints["speed_views"]))
        if explained:
            log.error("%s", explained)
            return 2
        log.error("speed layer query failed: %s", failed)
        return 1
    return 0

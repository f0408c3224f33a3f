"""The speed layer's three streaming queries over Kafka `events`, and how to (re)start them:
- ``archive``: every parsed event, appended to the master dataset's Delta table,
  partitioned by event date (``store.master``: the batch layer recomputes from it; it
  keeps late events too);
- ``speed_views``: events deduplicated within the watermark, aggregated into minute buckets
  by ``views.transforms.views`` (every event view, goals included);
- ``speed_sessions``: the same events grouped into sessions by Spark's session windows
  (append mode: a session is emitted once the watermark passes its end).
The views and sessions queries hand each micro-batch to their sinks (``speed_layer.sinks``,
``speed_layer.sessions``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from infra import master
from infra.settings import Settings
from speed_layer.checkpoints import archive_checkpoint, query_checkpoint
from views.catalogue import SPEED_GRANULARITY
from views.goals import Goal
from views.transforms import dedupe_events, parse_events, session_rows, views

# The fields the sessions query reads: parsing only these costs less than the whole event.
SESSION_FIELDS = ("type", "path", "visitor_id")
Sink = Callable[[DataFrame, int], None]


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
    """The speed layer's streaming queries and how to (re)start them. ``starts``: the Kafka
    options of each stateful query whose checkpoint is new (``checkpoints.query_start``)."""

    spark: SparkSession
    settings: Settings
    view_sink: Sink
    session_sink: Sink
    starts: dict[str, dict[str, str]] = field(default_factory=dict)

    def _kafka(self, query: str) -> DataFrame:
        s = self.settings
        start = self.starts.get(query) or {"startingOffsets": s.speed.starting_offsets}
        return kafka_stream(self.spark, s.kafka.bootstrap, s.kafka.topic_events, start, s.speed.max_batch_events)

    def start_archive(self) -> StreamingQuery:
        s = self.settings
        return (
            archive_frame(self._kafka("archive"))
            .writeStream.queryName("archive")
            .format(master.FORMAT)
            .options(**master.WRITE_OPTIONS)
            .partitionBy(master.PARTITION)
            .option("path", str(s.paths.master_dir))
            .option("checkpointLocation", str(archive_checkpoint(s.paths.checkpoint_dir)))
            .trigger(processingTime=s.speed.archive_trigger)
            .outputMode("append")
            .start()
        )

    def _start_stateful(self, query: str, frame: DataFrame, mode: str, sink: Sink) -> StreamingQuery:
        """A stateful query: its versioned checkpoint, the speed trigger, a sink per micro-batch."""
        s = self.settings
        return (
            frame.writeStream.queryName(query)
            .outputMode(mode)
            .foreachBatch(sink)
            .option("checkpointLocation", str(query_checkpoint(s.paths.checkpoint_dir, query)))
            .trigger(processingTime=s.speed.trigger)
            .start()
        )

    def start_views(self, goals: tuple[Goal, ...]) -> StreamingQuery:
        """The views query. Goals only change the expression before the aggregation, not
        its state, so a restart with new goals resumes from the same checkpoint."""
        frame = speed_view_frame(self._kafka("speed_views"), self.settings.speed.watermark, goals)
        return self._start_stateful("speed_views", frame, "update", self.view_sink)

    def start_sessions(self) -> StreamingQuery:
        s = self.settings
        frame = speed_session_frame(self._kafka("speed_sessions"), s.speed.watermark, s.spark.session_gap)
        return self._start_stateful("speed_sessions", frame, "append", self.session_sink)

    def start_all(self, goals: tuple[Goal, ...]) -> dict[str, StreamingQuery]:
        return {"archive": self.start_archive(), "views": self.start_views(goals), "sessions": self.start_sessions()}

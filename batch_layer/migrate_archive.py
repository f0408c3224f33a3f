"""Migrate a master dataset written by an earlier Parallax (Parquet from Spark's file sink,
whose ``_spark_metadata`` log lists the committed files) to the Delta Lake table the
layers now read and write (``infra.master``).

Delta's CONVERT TO DELTA writes a first commit listing the files in place (no event is
copied; with a file-sink log, only the files that log committed). Every date's events
are counted, with a checksum of their ids, before and after: if any differs, the new log
is moved aside and the archive is left as it was. Run with the speed layer stopped:
``parallax archive migrate``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from infra import master

log = logging.getLogger(__name__)
# A file-sink log written to this recently belongs to a speed layer still running.
QUIET_S = 120


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    """Per date: (events, checksum of their ids) before and after."""
    before: dict[date, tuple[int, int]]
    after: dict[date, tuple[int, int]]

    @property
    def events(self) -> int:
        return sum(n for n, _ in self.before.values())


def tally(events: DataFrame) -> dict[date, tuple[int, int]]:
    """Per date: how many events (copies included) and the sum of their ids' 64-bit hashes."""
    rows = events.groupBy("date").agg(F.count(F.lit(1)).alias("n"),
                                      F.sum(F.xxhash64("event_id").cast("decimal(38,0)")).alias("h")).collect()
    return {r["date"]: (int(r["n"]), int(r["h"] or 0)) for r in rows}


def _check_quiet(path: Path, now: float) -> None:
    logs = list((path / master.FILE_SINK_LOG).iterdir()) if (path / master.FILE_SINK_LOG).is_dir() else []
    newest = max((f.stat().st_mtime for f in logs), default=0.0)
    if now - newest < QUIET_S:
        raise MigrationError(f"the archive at {path} was written {now - newest:.0f} s ago: stop the speed layer "
                             "(`parallax speed`) before migrating it")


def migrate(spark: SparkSession, path: str | Path) -> Migration | None:
    """Convert the Parquet archive at ``path`` to a Delta table in place; None when there is
    nothing to migrate (already a Delta table, or no archive at all)."""
    path = Path(path)
    if not master.is_legacy(path):
        log.info("%s is %s: nothing to migrate", path,
                 "already a Delta table" if master.table_exists(path) else "not an archive yet")
        return None
    _check_quiet(path, time.time())
    t0 = time.perf_counter()
    # Reading the folder as Parquet honours the file sink's log: the files it committed.
    before = tally(spark.read.option("mergeSchema", "true").parquet(str(path)))
    log.info("%s: %d events in %d dates before the migration (counted in %.0f s)", path,
             sum(n for n, _ in before.values()), len(before), time.perf_counter() - t0)
    spark.sql(f"CONVERT TO DELTA parquet.`{path}` PARTITIONED BY ({master.PARTITION} DATE)")
    after = tally(master.read_table(spark, path))
    result = Migration(before, after)
    if before != after:
        aside = path / f"{master.LOG_DIR}.failed-{datetime.now():%Y%m%d%H%M%S}"
        (path / master.LOG_DIR).rename(aside)
        differing = sorted(d for d in set(before) | set(after) if before.get(d) != after.get(d))
        raise MigrationError(f"the Delta table would not hold the same events on {', '.join(map(str, differing))}; "
                             f"its log was moved aside to {aside} and the archive left as it was")
    # The old log no longer decides anything; kept, renamed, for whoever wants to compare.
    if (path / master.FILE_SINK_LOG).is_dir():
        (path / master.FILE_SINK_LOG).rename(path / f"{master.FILE_SINK_LOG}.migrated")
    log.info("%s is a Delta table now: %d events in %d dates, the same before and after (%.0f s)", path,
             result.events, len(after), time.perf_counter() - t0)
    return result

"""spark-submit entry point of the master dataset's compaction: each date partition's many
small files rewritten into a few large ones, and the files no longer in the table deleted.

    spark-submit batch_layer/compact.py --day 2026-12-06
        compact that date's partition, however many files it has;
    spark-submit batch_layer/compact.py [--before 2026-12-07]
        compact every partition dated before that day (default: today, UTC) holding more
        than ``compaction.min_files`` files, newest first, at most ``compaction.max_days``
        (what the daily DAG ``parallax_compaction`` submits);
    then, either way, VACUUM: the files that left the table more than
    ``compaction.vacuum_retention_hours`` ago are deleted.

The archive query appends a few files every trigger (thousands a day) while this runs.
Delta's OPTIMIZE rewrites a partition in one commit that changes no data (its add and
remove actions say ``dataChange: false``): the appends go on beside it, and readers see
the partition before or after, whole. Each compaction is checked: the partition's events
and the sum of their ids' hashes at the commit are those of the version just before it,
which differs from it by that commit alone. Progress (partition, files and bytes before
and after, seconds) is logged: under Airflow, the task's log. Settings come from the
PARALLAX_* environment, like every other Parallax process.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from batch_layer.migrate_archive import tally
from infra import master
from infra.settings import Settings, load_settings
from infra.spark import get_session

log = logging.getLogger("batch_layer.compact")


class CompactionError(RuntimeError):
    pass


@dataclass(frozen=True)
class Files:
    """Some files of the table: how many, and their bytes."""
    count: int = 0
    size: int = 0

    def __str__(self) -> str:
        return f"{self.count:,} file{'' if self.count == 1 else 's'} ({self.size / 2**20:,.1f} MiB)"


@dataclass(frozen=True)
class Compaction:
    """One partition's compaction: its files before and after (after: with what the
    archive appended meanwhile), those the commit replaced and wrote, its version (None
    when there was nothing to rewrite), its events (None then too), and the seconds it and
    its check took."""
    day: date
    before: Files
    after: Files
    removed: Files
    added: Files
    version: int | None
    events: int | None
    seconds: float
    check_seconds: float


@dataclass(frozen=True)
class Vacuum:
    deleted: int
    size: int
    seconds: float


def partition_files(master_dir: str | Path, version: int | None = None) -> dict[date, Files]:
    """Each date partition's files in the table's current version (or ``version``), from
    the table's log (delta-rs: no Spark job, no listing of the files themselves)."""
    actions = pa.table(DeltaTable(str(master_dir), version=version).get_add_actions(flatten=True))
    out: dict[date, list[int]] = {}
    if not actions.num_rows:
        return {}
    for day, size in zip(actions.column(f"partition.{master.PARTITION}").to_pylist(),
                         actions.column("size_bytes").to_pylist(), strict=True):
        files = out.setdefault(day, [0, 0])
        files[0] += 1
        files[1] += size
    return {day: Files(n, size) for day, (n, size) in out.items()}


def choose(partitions: dict[date, Files], *, before: date, min_files: int, max_days: int
           ) -> tuple[list[date], list[date]]:
    """The partitions a scheduled run compacts: dated before ``before`` (the day still
    being written waits for the next run), with more than ``min_files`` files, newest
    first, at most ``max_days``; and those over the threshold left for the next runs."""
    over = sorted((day for day, files in partitions.items() if day < before and files.count > min_files),
                  reverse=True)
    return over[:max_days], over[max_days:]


def _version(master_dir: str | Path) -> int:
    version = master.current_version(master_dir)
    if version is None:
        raise CompactionError(f"no Delta table at {master_dir}")
    return version


def _commits_since(master_dir: str | Path, version: int) -> list[dict]:
    """The table's commits after ``version``, oldest first (their commit info)."""
    table = DeltaTable(str(master_dir))
    newer = table.version() - version
    return sorted((c for c in table.history(newer) if c["version"] > version), key=lambda c: c["version"]) \
        if newer > 0 else []


def _tally_at(spark: SparkSession, master_dir: str | Path, version: int, day: date) -> tuple[int, int]:
    """The partition's events and the sum of their ids' hashes in ``version``."""
    events = master.read_table(spark, master_dir, version)
    return tally(events.where(F.col(master.PARTITION) == F.lit(day))).get(day, (0, 0))


def compact_partition(spark: SparkSession, master_dir: str | Path, day: date) -> Compaction:
    """OPTIMIZE the partition of ``day``, then check its commit: the partition's events and
    their ids' checksum equal those of the version before it. Raises CompactionError if not."""
    path = str(master_dir)
    before = partition_files(path).get(day, Files())
    start = _version(path)
    log.info("%s: compacting %s, from version %d", day, before, start)
    t0 = time.perf_counter()
    # The literal is an ISO date: the predicate selects one partition.
    (row,) = spark.sql(f"OPTIMIZE {master.sql_name(path)} WHERE {master.PARTITION} = '{day.isoformat()}'"
                       ).collect()
    seconds = time.perf_counter() - t0
    metrics = row["metrics"]
    removed = Files(metrics["numFilesRemoved"], metrics["filesRemoved"]["totalSize"] or 0)
    added = Files(metrics["numFilesAdded"], metrics["filesAdded"]["totalSize"] or 0)
    if not removed.count:  # nothing to rewrite: OPTIMIZE commits nothing
        log.info("%s: nothing to compact: no small files to merge among its %s (%.1f s)", day, before, seconds)
        return Compaction(day, before, before, removed, added, None, None, seconds, 0.0)
    # Our commit is the one OPTIMIZE after ``start``; the archive's appends are the others.
    ours = [c for c in _commits_since(path, start) if c["operation"] == "OPTIMIZE"]
    if len(ours) != 1:
        raise CompactionError(f"{day}: expected one OPTIMIZE commit after version {start}, found "
                              f"{[c['version'] for c in ours]} (is another compaction running?)")
    version = ours[0]["version"]
    t1 = time.perf_counter()
    was, now = _tally_at(spark, path, version - 1, day), _tally_at(spark, path, version, day)
    check_seconds = time.perf_counter() - t1
    if was != now:
        raise CompactionError(
            f"{day}: the compacted partition differs from the files it replaced: {was[0]:,} events (id checksum "
            f"{was[1]}) at version {version - 1}, {now[0]:,} ({now[1]}) at version {version}. The replaced files "
            "stay on disk for the vacuum retention; nothing was vacuumed")
    after = partition_files(path).get(day, Files())
    log.info("%s: %s rewritten into %s in %.1f s (version %d; %d other commits meanwhile, the archive's); the "
             "partition now has %s", day, removed, added, seconds, version, version - start - 1, after)
    log.info("%s: checked: %s events, and their ids' checksum, the same at version %d and %d (%.1f s)",
             day, f"{now[0]:,}", version - 1, version, check_seconds)
    return Compaction(day, before, after, removed, added, version, now[0], seconds, check_seconds)


def vacuum(spark: SparkSession, master_dir: str | Path, retention_hours: int) -> Vacuum:
    """VACUUM the table: delete the files it no longer lists that are older than
    ``retention_hours``. Delta's retention check stays on (it refuses less than a week)."""
    path = str(master_dir)
    start = _version(path)
    log.info("vacuum: deleting the files out of the table for more than %d hours", retention_hours)
    t0 = time.perf_counter()
    spark.sql(f"VACUUM {master.sql_name(path)} RETAIN {int(retention_hours)} HOURS").collect()
    seconds = time.perf_counter() - t0
    # VACUUM logs its start (what it found) and its end (what it deleted) as commits.
    commits = {c["operation"]: c.get("operationMetrics") or {} for c in _commits_since(path, start)}
    deleted = int(commits.get("VACUUM END", {}).get("numDeletedFiles", 0))
    size = int(commits.get("VACUUM START", {}).get("sizeOfDataToDelete", 0))
    log.info("vacuum: deleted %s files (%.1f MiB) in %.1f s", f"{deleted:,}", size / 2**20, seconds)
    return Vacuum(deleted, size, seconds)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Compact the master dataset's date partitions, then VACUUM it.")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--day", type=date.fromisoformat, help="compact this date's partition (YYYY-MM-DD, UTC)")
    what.add_argument("--before", type=date.fromisoformat,
                      help="compact the partitions over the threshold dated before this day (default: today, UTC)")
    # Airflow's templated arguments leave an empty string where an option is left out.
    return parser.parse_args([a for a in (sys.argv[1:] if argv is None else argv) if a])


def run(settings: Settings, args: argparse.Namespace) -> int:
    path = settings.paths.master_dir
    c = settings.compaction
    if master.is_legacy(path):
        log.error("the master dataset at %s is a Parquet archive of an earlier Parallax: migrate it first "
                  "(`parallax archive migrate`)", path)
        return 2
    if not master.table_exists(path):
        log.info("no master dataset at %s yet: nothing to compact", path)
        return 0
    if args.day:
        days = [args.day]
    else:
        before = args.before or datetime.now(timezone.utc).date()
        partitions = partition_files(path)
        days, later = choose(partitions, before=before, min_files=c.min_files, max_days=c.max_days)
        log.info("%d date partitions, %s in all; dated before %s and over %d files: %d%s", len(partitions),
                 Files(sum(f.count for f in partitions.values()), sum(f.size for f in partitions.values())),
                 before, c.min_files, len(days) + len(later),
                 f"; the {len(later)} oldest wait for the next runs (at most {c.max_days} a run): "
                 f"{', '.join(map(str, later))}" if later else "")
    spark = get_session(settings, "parallax-compact", batch=True)
    try:
        t0 = time.perf_counter()
        done = []
        for i, day in enumerate(days, 1):
            log.info("partition %d/%d: %s", i, len(days), day)
            try:
                done.append(compact_partition(spark, path, day))
            except CompactionError as exc:
                log.error("%s", exc)
                return 1
        if days:
            log.info("%d partitions compacted in %.0f s: %s replaced by %s", len(done), time.perf_counter() - t0,
                     Files(sum(d.removed.count for d in done), sum(d.removed.size for d in done)),
                     Files(sum(d.added.count for d in done), sum(d.added.size for d in done)))
        else:
            log.info("no partition to compact")
        vacuum(spark, path, c.vacuum_retention_hours)
        return 0
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(load_settings(), args)


if __name__ == "__main__":
    sys.exit(main())

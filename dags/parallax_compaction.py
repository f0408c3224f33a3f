"""
### Parallax compaction

The speed layer's archive query appends a few small files to the master dataset every
trigger (30 s): thousands a day, which every read of the day (the nightly batch, a
reprocessing, the reports computed from the archive) then opens one by one. This DAG
rewrites each day's partition into a few large files with Delta Lake's `OPTIMIZE`, while
the archive query keeps writing: the rewrite is one commit that changes no data, and
readers see the partition before it or after it, whole. Each compaction is checked (the
partition's events and a checksum of their ids, just before the commit and at it).

**Daily, at 00:30 UTC**: yesterday's partition is complete by then; every partition dated
before the run's day holding more than `PARALLAX_COMPACTION_MIN_FILES` files (100) is
compacted, newest first, at most `PARALLAX_COMPACTION_MAX_DAYS` (7) a run.

**On demand** (Trigger DAG ▸ `day`): that date's partition (UTC), however many files it has.

Then `VACUUM` deletes the files that left the table more than
`PARALLAX_COMPACTION_VACUUM_RETENTION_HOURS` ago (168: a week, the Kafka `events` topic's
retention): the files replaced by compactions, and those of erased events. The `compact`
task's log shows each partition's files and bytes before and after, and the seconds taken.
"""
from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import Param, dag

# Light at parse time: none imports PySpark.
from batch_layer.failures import record_failure
from dags.spark_jobs import batch_job


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    # A cron schedule: the run after 00:30 UTC compacts the days before that run's day.
    schedule="30 0 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Runs queue: one compaction at a time (each takes the machine's Spark).
    max_active_runs=1,
    # A retry after a conflict (an erasure rewriting the same partition meanwhile).
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=10), "on_failure_callback": record_failure},
    params={
        "day": Param(None, type=["null", "string"], format="date", title="Day",
                     description="Compact this date's partition (YYYY-MM-DD, UTC) now, however many files it has. "
                                 "Empty: the partitions over the threshold, as the daily run does."),
    },
    tags=["parallax", "batch", "ops"],
)
def parallax_compaction() -> None:
    batch_job(
        "compact",
        "compact.py",
        # `--day D` on demand, else the days before the run's own (its run_after, not now).
        ["{{ '--day=' ~ params['day'] if params['day'] else '--before=' ~ dag_run.run_after.strftime('%Y-%m-%d') }}"],
        "The partitions compacted (files and bytes before and after, seconds) and the VACUUM, in this task's log.",
    )


parallax_compaction()

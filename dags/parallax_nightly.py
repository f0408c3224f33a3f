"""
### Parallax nightly batch

Recomputes exact views from the master dataset and then moves each site's batch boundary
past the recomputed day, so reports show that day as `final`.

Sites live in their own time zones, so "the night" comes at a different hour for each:
the DAG runs every hour, a quarter past (the grace for late events), and each run
recomputes the day of exactly the sites whose local midnight fell in the hour before.

1. `archive_complete` waits until the master dataset holds every event Kafka received up
   to the day's end plus the grace (the speed layer's archive query's committed progress,
   not a sleep); a speed layer down for hours fails it, and the admins are told.
2. `daily_views` (Spark) computes the views, checks them (no negative value, hours adding
   up to the day, visitors no more than events, every site with events present) and only
   then moves the boundary, which never passes a day that was not computed.

To reprocess a day by hand, trigger with the `day` parameter: that day is recomputed for
every site where it has ended. For a range, some sites only, or a dry run first, use
`parallax_reprocess`. A run that fails for good notifies the admins.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

import pendulum
from airflow.sdk import Param, PokeReturnValue, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

# Light at parse time: none imports PySpark.
from batch_layer.failures import record_failure
from batch_layer.schedule import GRACE, utcnow
from dags.spark_jobs import batch_job
from views.catalogue import local_day_bounds

log = logging.getLogger(__name__)
GRACE_MINUTES = int(GRACE.total_seconds() // 60)
GRACE_DELTA = f"macros.timedelta(minutes={GRACE_MINUTES})"  # in the templates
# How long the archive may keep the run waiting before the run fails (and alerts).
ARCHIVE_WAIT = pendulum.duration(hours=3)


def archive_deadline(day: date | None, interval_end: datetime, zones: dict[str, str], now: datetime) -> datetime:
    """Up to when the archive must be complete: a scheduled run's interval end (its hour's
    midnights plus the grace); a manual run's day's last end among the sites' zones plus the
    grace, or now if that is later than now."""
    if day is None:
        return interval_end
    ends = [local_day_bounds(day, tz)[1] + GRACE for tz in zones.values()]
    return min(max(ends, default=now), now)


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    # Interval timetable: the run at H+1:15 has the data interval [H:15, H+1:15); shifted back
    # by the grace, that is the hour [H, H+1) whose local midnights it processes.
    schedule=CronDataIntervalTimetable(f"{GRACE_MINUTES} * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # A task that fails for good (after its retries) is recorded as an incident: the
    # alarms notify the admins (`parallax alerting`).
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5), "on_failure_callback": record_failure},
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Reprocess this day (YYYY-MM-DD) for every site where it has ended.",
        )
    },
    tags=["parallax", "batch"],
)
def parallax_nightly() -> None:
    @task.sensor(poke_interval=30, timeout=ARCHIVE_WAIT.total_seconds(), mode="poke",
                 doc_md="Waits until the master dataset holds every event Kafka received up to the day's end "
                        "plus the grace (the archive query's committed progress).")
    def archive_complete() -> PokeReturnValue:
        from batch_layer.completeness import coverage  # noqa: PLC0415 -- at run time, not at parse time
        from infra.clients import TopicReader, cassandra_keyspace  # noqa: PLC0415
        from infra.settings import load_settings  # noqa: PLC0415
        from store.diagnostics import Diagnostics  # noqa: PLC0415
        from store.registry import Registry  # noqa: PLC0415

        context = get_current_context()
        day = context["params"]["day"]
        settings = load_settings()
        ks = settings.cassandra.keyspace
        with cassandra_keyspace(settings) as session:
            reader = TopicReader(settings, settings.kafka.topic_events, client_id="parallax-nightly-archive-check")
            try:
                until = archive_deadline(date.fromisoformat(day) if day else None, context["data_interval_end"],
                                         Registry(session, ks).site_zones(), utcnow())
                found = coverage(reader, Diagnostics(session, ks), until)
            finally:
                reader.close()
        log.info("%s", found.describe())
        return PokeReturnValue(is_done=found.complete)

    daily_views = batch_job(
        "daily_views",
        "daily_views.py",
        # `--day D` for a manual reprocessing, else `--interval START END` (shifted by the
        # grace); an empty third argument is dropped by the job.
        [
            "{{ '--day' if params.day else '--interval' }}",
            f"{{{{ params.day or (data_interval_start - {GRACE_DELTA}).isoformat() }}}}",
            f"{{{{ '' if params.day else (data_interval_end - {GRACE_DELTA}).isoformat() }}}}",
        ],
        "Exact views of the day(s) into Cassandra `batch_views`, validated, then the boundary (last).",
    )
    archive_complete() >> daily_views


parallax_nightly()

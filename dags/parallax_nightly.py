"""
### Parallax nightly batch

Recomputes exact views from the master dataset and then moves each site's batch boundary
past the recomputed day, so reports show that day as `final`.

Sites live in their own time zones, so "the night" comes at a different hour for each:
the DAG runs every hour, a quarter past (the grace for late events), and each run
recomputes the day of exactly the sites whose local midnight fell in the hour before.
To reprocess a day by hand (late data, a fix), trigger the DAG with the `day` parameter:
that day is recomputed for every site where it has ended.
The Spark job is submitted through the `spark_default` connection (its host is the Spark
master, `local[2]` on one machine). A run that fails for good notifies the admins.
To recompute a range of days, some sites only, or to see first what would change, use
`parallax_reprocess`.
"""
from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param
from airflow.timetables.interval import CronDataIntervalTimetable

# Light at parse time: none imports PySpark.
from batch_layer.failures import record_failure
from batch_layer.schedule import GRACE
from dags.spark_jobs import batch_job

GRACE_MINUTES = int(GRACE.total_seconds() // 60)
GRACE_DELTA = f"macros.timedelta(minutes={GRACE_MINUTES})"  # in the templates

with DAG(
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
) as dag:
    batch_job(
        "daily_views",
        "daily_views.py",
        # `--day D` for a manual reprocessing, else `--interval START END` (shifted by the
        # grace); an empty third argument is dropped by the job.
        [
            "{{ '--day' if params.day else '--interval' }}",
            f"{{{{ params.day or (data_interval_start - {GRACE_DELTA}).isoformat() }}}}",
            f"{{{{ '' if params.day else (data_interval_end - {GRACE_DELTA}).isoformat() }}}}",
        ],
        "Exact views of the day(s) into Cassandra `batch_views`, then the boundary (last).",
    )

"""
### Parallax nightly batch

Recomputes the exact views of one day (UTC) from the master dataset and then moves every
site's batch boundary past that day, so reports show that day as `final`.

Each run covers its data interval: the run that starts at midnight processes the day that
just ended. To reprocess a day by hand (late data, a fix), trigger the DAG with the `day`
parameter, or run `airflow dags test parallax_nightly YYYY-MM-DD` for that day.
The Spark job is submitted through the `spark_default` connection (its host is the Spark
master, `local[2]` on one machine).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param
from airflow.timetables.interval import CronDataIntervalTimetable

REPO_ROOT = Path(__file__).resolve().parent.parent

with DAG(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    # Interval timetable: the run at D+1 00:00 has the data interval [D, D+1), so {{ ds }} is D.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Reprocess this day (YYYY-MM-DD) instead of the run's data interval.",
        )
    },
    tags=["parallax", "batch"],
) as dag:
    SparkSubmitOperator(
        task_id="daily_views",
        doc_md="Exact views of the day into Cassandra `batch_views`, then the boundary (last).",
        application=str(REPO_ROOT / "batch_layer" / "daily_views.py"),
        application_args=["--date", "{{ params.day or ds }}"],
        conn_id="spark_default",
        name="parallax-batch-{{ params.day or ds }}",
        conf={
            # The job imports Parallax's packages: run it with this environment's Python.
            "spark.pyspark.python": sys.executable,
            "spark.pyspark.driver.python": sys.executable,
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.enabled": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
        },
        driver_memory="2g",
        verbose=False,
    )

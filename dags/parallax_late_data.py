"""
### Parallax late data

Events can reach the master dataset after their day was computed: a tracker that retries
for hours, a speed layer catching up after an outage, events sent by hand. Every hour this
DAG reads the table's new commits (its log, not a listing of its files) and counts, per site
and day, the events committed after that day's last batch run read the table.

- Days up to `PARALLAX_LATE_LIMIT_DAYS` old (7 by default) are recomputed at once (the
  `recompute` task: the same job as `parallax_reprocess`, for exactly those site-days).
- Older days are only counted: `GET /api/v1/sites/SITE/late-events` shows them, and a run of
  `parallax_reprocess` over them takes them in.

`find_late` skips the rest of the run when there is nothing to recompute.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

# Light at parse time: none imports PySpark.
from batch_layer.failures import record_failure
from dags.spark_jobs import batch_job

log = logging.getLogger(__name__)


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    # Hourly, away from the nightly runs (a quarter past) that most late data follows.
    schedule="45 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5), "on_failure_callback": record_failure},
    tags=["parallax", "batch"],
)
def parallax_late_data() -> None:
    @task.short_circuit(doc_md="Reads the master dataset's new commits; records late events per site and day; "
                               "returns the site-days to recompute (none: the run ends here).")
    def find_late() -> str:
        from batch_layer.late_data import plan, scan, site_days_arg  # noqa: PLC0415 -- at run time
        from batch_layer.schedule import utcnow  # noqa: PLC0415
        from infra.clients import cassandra_keyspace  # noqa: PLC0415
        from infra.settings import load_settings  # noqa: PLC0415
        from store.late_events import LateEvents  # noqa: PLC0415
        from store.registry import Registry  # noqa: PLC0415

        settings = load_settings()
        ks = settings.cassandra.keyspace
        with cassandra_keyspace(settings) as session:
            late = LateEvents(session, ks)
            zones = Registry(session, ks).site_zones()
            now = utcnow()
            scan(late, settings.paths.master_dir, zones, now)
            found = plan(late, [s for s in late.sites() if s in zones], now.date(), settings.batch.late_limit_days)
        for day in found.too_old:
            log.warning("%s %s: %d late events, older than %d days: not recomputed automatically (reprocess it)",
                        day.site, day.day, day.events, settings.batch.late_limit_days)
        for day, sites in found.recompute.items():
            log.info("%s: late events in %s: recomputing", day, ", ".join(sites))
        return site_days_arg(found.recompute)

    recompute = batch_job(
        "recompute",
        "reprocess.py",
        ["--site-days={{ ti.xcom_pull(task_ids='find_late') }}", "--run-id", "{{ run_id }}"],
        "The site-days with late events recomputed (views, run, boundary, drift), as a reprocess run does.",
    )
    find_late() >> recompute


parallax_late_data()

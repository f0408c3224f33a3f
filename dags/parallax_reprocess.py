"""
### Parallax reprocess

Recomputes exactly the site-days you ask for from the master dataset: after a tracking bug,
a change of goals or of the acquisition rule, or to check the batch views.

**Trigger with a form** (Trigger DAG ▸ the parameters):
- `first`, `last`: the days (inclusive), each in the site's own time zone;
- `sites`: site ids, one per line (empty: every registered site);
- `dry_run`: write nothing; instead report, per site, day and measure, the day's total the
  batch views hold now and the one recomputed (the `recompute` task's log, and stored under
  this run's id: `parallax reprocess report RUN_ID`).

Days that have not ended (+ 15 minutes' grace) in a site's zone are left out, and said so.
Each day is recomputed as the nightly run does it: views upserted, the run recorded, the
boundary moved if every earlier day is final, the drift recorded. Re-running writes the
same rows. The `plan` task checks the range and the sites before Spark starts.
"""
from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

# Light at parse time: none imports PySpark.
from batch_layer.failures import record_failure
from batch_layer.schedule import MAX_DAYS, plan_range, utcnow
from dags.spark_jobs import batch_job

log = logging.getLogger(__name__)


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Runs queue: each takes the machine's Spark.
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": record_failure},
    params={
        "first": Param(type="string", format="date", title="First day",
                       description="The first day to recompute (YYYY-MM-DD), in each site's time zone."),
        "last": Param(type="string", format="date", title="Last day",
                      description=f"The last day (inclusive); at most {MAX_DAYS} days in a run."),
        "sites": Param([], type="array", items={"type": "string"}, title="Sites",
                       description="Site ids, one per line; empty: every registered site."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Write nothing; report stored and recomputed totals per site, day and measure."),
    },
    tags=["parallax", "batch", "ops"],
)
def parallax_reprocess() -> None:
    @task(doc_md="Checks the range and the sites, and logs the site-days the run recomputes.")
    def plan() -> int:
        from infra.clients import cassandra_keyspace  # noqa: PLC0415 -- at run time, not at parse time
        from infra.settings import load_settings  # noqa: PLC0415
        from store.registry import Registry  # noqa: PLC0415

        params = get_current_context()["params"]
        settings = load_settings()
        with cassandra_keyspace(settings) as session:
            zones = Registry(session, settings.cassandra.keyspace).site_zones()
        # A PlanError fails the task with its message (a bad range, an unknown site).
        ready, waiting = plan_range(zones, date.fromisoformat(params["first"]), date.fromisoformat(params["last"]),
                                    list(params["sites"] or []), utcnow())
        for day, sites in ready.items():
            log.info("%s: %s", day, ", ".join(sites))
        for day, sites in waiting:
            log.warning("%s has not ended (+ grace) in the zone of %s: left out", day, ", ".join(sites))
        site_days = sum(len(s) for s in ready.values())
        log.info("%s %d site-days over %d days", "dry run of" if params["dry_run"] else "recomputing", site_days,
                 len(ready))
        return site_days

    recompute = batch_job(
        "recompute",
        "reprocess.py",
        ["--first", "{{ params['first'] }}", "--last", "{{ params['last'] }}",
         "{{ '--sites=' ~ (params['sites'] | join(',')) if params['sites'] else '' }}",
         "{{ '--dry-run' if params['dry_run'] else '' }}",
         "--run-id", "{{ run_id }}"],
        "The site-days recomputed (or, in a dry run, compared) by Spark; its progress is this task's log.",
    )
    plan() >> recompute


parallax_reprocess()

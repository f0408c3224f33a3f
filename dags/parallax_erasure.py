"""
### Parallax erasure

Erases data subjects: their events (by visitor id) are removed from the master dataset in
one Delta transaction, and every site-day they were on is recomputed, so that no batch view
counts them any more (rows only they made are deleted, not left with old values).

Requests are recorded first, with who asked and when: `parallax erase VISITOR_ID...` or
`POST /api/v1/admin/erasures` (admins); each starts `pending`. This DAG runs every five
minutes and takes the pending requests (and any left `running` by a run that stopped); when
there is none, the `take` task skips the Spark job. `parallax erase` also triggers a run for
its request at once.

**Trigger by hand** with `request_id` to run one request now, a failed one included (its
retry). A request already done is left as it is: running it again changes nothing.

The `erase` task's log shows each request's events found per site and day, the delete's
commit and its `numDeletedRows` (checked against the count), and each site-day recomputed.
Days that have not ended (+ 15 minutes' grace) in a site's zone are left to the nightly
run, which reads the table without the events. `parallax erasures show ID` and
`GET /api/v1/admin/erasures/ID` show the request's record. README: "Erasure".
"""
from __future__ import annotations

import logging
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

# Light at parse time: none imports PySpark.
from batch_layer.failures import record_failure
from dags.spark_jobs import batch_job

log = logging.getLogger(__name__)
REQUEST_ID = r"^[0-9a-f]{12}$"


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Runs never overlap: a request left running was left by a run that has ended.
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=5), "on_failure_callback": record_failure},
    params={
        "request_id": Param(None, type=["null", "string"], pattern=REQUEST_ID, title="Request",
                            description="One erasure request's id (12 hex digits): run it now, or retry it if it "
                                        "failed. Empty: every pending request."),
    },
    tags=["parallax", "batch", "ops", "privacy"],
)
def parallax_erasure() -> None:
    @task.short_circuit(doc_md="The requests this run erases (the Spark job is skipped when there is none).")
    def take() -> list[str]:
        from infra.clients import cassandra_keyspace  # noqa: PLC0415 -- at run time, not at parse time
        from infra.settings import load_settings  # noqa: PLC0415
        from store.erasures import DONE, Erasures  # noqa: PLC0415

        params = get_current_context()["params"]
        settings = load_settings()
        with cassandra_keyspace(settings) as session:
            erasures = Erasures(session, settings.cassandra.keyspace)
            if params.get("request_id"):
                request = erasures.get(params["request_id"])
                if request is None:
                    raise ValueError(f"no erasure request {params['request_id']!r}")
                if request.status == DONE:
                    log.info("erasure %s is done already (%s events removed): nothing to do", request.id,
                             request.events_removed)
                    return []
                requests = [request]
            else:
                requests = erasures.to_take()
        for r in requests:
            log.info("erasure %s (%s): %d visitor id(s)%s, asked by %s at %s", r.id, r.status, len(r.visitor_ids),
                     f" on site {r.site}" if r.site else "", r.requested_by, r.requested_at.isoformat())
        if not requests:
            log.info("no pending erasure request")
        return [r.id for r in requests]

    erase = batch_job(
        "erase",
        "erase.py",
        ["--requests", "{{ ti.xcom_pull(task_ids='take') | join(',') }}", "--run-id", "{{ run_id }}"],
        "Removes the requests' events from the master dataset, then recomputes the site-days they were on; "
        "its progress is this task's log.",
    )
    take() >> erase


parallax_erasure()

"""The DAG folder imports cleanly and the nightly DAG is what ops expect."""
from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import jinja2
import pendulum
import pytest

from batch_layer.daily_views import parse_args
from batch_layer.reprocess import parse_args as parse_reprocess_args

DAGS = Path(__file__).resolve().parents[2] / "dags"
# Airflow is imported inside the tests: it reads its configuration when first imported, which
# must come after the session's settings point it at an Airflow home of the tests' own.


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415 -- see above

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"parallax_nightly", "parallax_reprocess"} <= set(dagbag.dag_ids)
    for dag_id in dagbag.dag_ids:
        assert dagbag.get_dag(dag_id).doc_md, dag_id


def test_every_spark_job_queues_in_the_one_pool_airflow_knows(dagbag, airflow_db):
    """Spark jobs of different DAGs (a nightly run, a compaction, an erasure) never run at
    once beyond the pool's slots: the pool exists, with the configured slots."""
    from airflow.models.pool import Pool  # noqa: PLC0415 -- see above

    spark_tasks = [t for dag_id in dagbag.dag_ids for t in dagbag.get_dag(dag_id).tasks
                   if t.task_type == "SparkSubmitOperator"]
    assert {t.dag_id for t in spark_tasks} >= {"parallax_nightly", "parallax_reprocess", "parallax_late_data",
                                               "parallax_erasure", "parallax_compaction"}
    assert {t.pool for t in spark_tasks} == {"parallax_spark"}
    assert Pool.get_pool("parallax_spark").slots == airflow_db.airflow.spark_slots == 1


def test_nightly_dag_submits_the_batch_job(dagbag):
    dag = dagbag.get_dag("parallax_nightly")
    assert {t.task_id for t in dag.tasks} == {"archive_complete", "daily_views"}
    task = dag.get_task("daily_views")
    assert task.upstream_task_ids == {"archive_complete"}  # the archive is checked first
    assert dag.get_task("archive_complete").mode == "poke" and dag.get_task("archive_complete").timeout > 0
    assert dag.timetable.summary == "15 * * * *"
    assert task.task_type == "SparkSubmitOperator"
    assert task.application.endswith("batch_layer/daily_views.py")
    assert dag.catchup is False
    assert "day" in dag.params


@pytest.mark.parametrize("params, expected", [
    ({}, ["--interval", "2026-11-22T05:00:00+00:00", "2026-11-22T06:00:00+00:00"]),
    ({"day": "2026-11-20"}, ["--day", "2026-11-20", ""]),
])
def test_job_arguments_for_scheduled_and_manual_runs(dagbag, params, expected):
    """A scheduled run passes its hour (less the grace); a manual one its `day`; and the
    batch job's parser accepts exactly what the template renders."""
    from airflow.sdk.execution_time import macros  # noqa: PLC0415 -- see above

    task = dagbag.get_dag("parallax_nightly").get_task("daily_views")
    context = {"params": {"day": None, **params}, "macros": macros,
               "data_interval_start": pendulum.datetime(2026, 11, 22, 5, 15, tz="UTC"),
               "data_interval_end": pendulum.datetime(2026, 11, 22, 6, 15, tz="UTC")}
    rendered = [jinja2.Template(a).render(**context) for a in task.application_args]
    assert rendered == expected
    args = parse_args(rendered)
    assert (str(args.day) if args.day else [a.isoformat() for a in args.interval]) == (
        params.get("day") or expected[1:3])


def test_reprocess_dag_is_a_form_for_ops(dagbag):
    dag = dagbag.get_dag("parallax_reprocess")
    assert type(dag.timetable).__name__ == "NullTimetable"  # no schedule: triggered by ops only
    assert {t.task_id for t in dag.tasks} == {"plan", "recompute"}
    recompute = dag.get_task("recompute")
    assert recompute.task_type == "SparkSubmitOperator" and recompute.application.endswith("batch_layer/reprocess.py")
    assert dag.get_task("plan").downstream_task_ids == {"recompute"}
    schema = {name: dag.params.get_param(name).schema for name in ("first", "last", "sites", "dry_run")}
    assert schema["first"]["format"] == schema["last"]["format"] == "date"
    assert schema["sites"]["type"] == "array" and schema["dry_run"]["type"] == "boolean"
    assert dag.params["sites"] == [] and dag.params["dry_run"] is False


@pytest.mark.parametrize("params, sites, dry_run", [
    ({"sites": [], "dry_run": False}, [], False),
    ({"sites": ["b", "a"], "dry_run": True}, ["a", "b"], True),
])
def test_reprocess_arguments_parse(dagbag, params, sites, dry_run):
    recompute = dagbag.get_dag("parallax_reprocess").get_task("recompute")
    context = {"params": {"first": "2026-11-01", "last": "2026-11-07", **params}, "run_id": "manual__x"}
    args = parse_reprocess_args([jinja2.Template(a).render(**context) for a in recompute.application_args])
    assert (str(args.first), str(args.last), args.sites, args.dry_run, args.run_id) == \
        ("2026-11-01", "2026-11-07", sites, dry_run, "manual__x")


def test_the_archive_must_be_complete_up_to_the_days_end_plus_grace(dagbag):
    from dags.parallax_nightly import archive_deadline  # noqa: PLC0415 -- see above

    now = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    interval_end = datetime(2026, 11, 22, 6, 15, tzinfo=UTC)
    zones = {"a": "Europe/Paris", "b": "America/Los_Angeles"}
    assert archive_deadline(None, interval_end, zones, now) == interval_end
    # 2026-11-20 ended last in Los Angeles (08:00 UTC on the 21st), plus the grace.
    assert archive_deadline(date(2026, 11, 20), interval_end, zones, now) == datetime(2026, 11, 21, 8, 15, tzinfo=UTC)
    # A day not over everywhere yet: what Kafka has received until now.
    assert archive_deadline(date(2026, 11, 22), interval_end, zones, now) == now


def test_late_data_dag_is_hourly_and_recomputes_what_it_found(dagbag):
    dag = dagbag.get_dag("parallax_late_data")
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("45 * * * *", "UTC")
    assert {t.task_id for t in dag.tasks} == {"find_late", "recompute"}
    assert dag.get_task("find_late").downstream_task_ids == {"recompute"}
    assert dag.max_active_runs == 1 and dag.catchup is False
    recompute = dag.get_task("recompute")
    assert recompute.application.endswith("batch_layer/reprocess.py")

    class TI:
        @staticmethod
        def xcom_pull(task_ids: str) -> str:
            assert task_ids == "find_late"
            return "2026-11-20:a,b;2026-11-21:b"

    args = parse_reprocess_args([jinja2.Template(a).render(ti=TI(), run_id="scheduled__x")
                                 for a in recompute.application_args])
    assert args.run_id == "scheduled__x"
    assert {str(day): sites for day, sites in args.site_days.items()} == {"2026-11-20": ["a", "b"],
                                                                           "2026-11-21": ["b"]}

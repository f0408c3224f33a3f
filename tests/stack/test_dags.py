"""The DAG folder imports cleanly and the nightly DAG is what ops expect."""
from __future__ import annotations

from pathlib import Path

import jinja2
import pendulum
import pytest

from batch_layer.daily_views import parse_args

DAGS = Path(__file__).resolve().parents[2] / "dags"
# Airflow is imported inside the tests: it reads its configuration when first imported, which
# must come after the session's settings point it at an Airflow home of the tests' own.


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415 -- see above

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "parallax_nightly" in dagbag.dag_ids


def test_nightly_dag_submits_the_batch_job(dagbag):
    dag = dagbag.get_dag("parallax_nightly")
    (task,) = dag.tasks
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

    (task,) = dagbag.get_dag("parallax_nightly").tasks
    context = {"params": {"day": None, **params}, "macros": macros,
               "data_interval_start": pendulum.datetime(2026, 11, 22, 5, 15, tz="UTC"),
               "data_interval_end": pendulum.datetime(2026, 11, 22, 6, 15, tz="UTC")}
    rendered = [jinja2.Template(a).render(**context) for a in task.application_args]
    assert rendered == expected
    args = parse_args(rendered)
    assert (str(args.day) if args.day else [a.isoformat() for a in args.interval]) == (
        params.get("day") or expected[1:3])

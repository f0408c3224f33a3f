"""The DAG folder imports cleanly and the nightly DAG is what ops expect."""
from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parent.parent / "dags"


@pytest.fixture(scope="module")
def dagbag(settings):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "parallax_nightly" in dagbag.dag_ids


def test_nightly_dag_submits_the_batch_job_for_its_day(dagbag):
    dag = dagbag.get_dag("parallax_nightly")
    (task,) = dag.tasks
    assert task.task_type == "SparkSubmitOperator"
    assert task.application.endswith("batch_layer/daily_views.py")
    assert task.application_args == ["--date", "{{ params.day or ds }}"]
    assert dag.catchup is False
    assert "day" in dag.params

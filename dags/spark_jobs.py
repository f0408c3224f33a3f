"""How Parallax's DAGs submit a batch-layer job: the Spark provider's SparkSubmitOperator on
the `spark_default` connection (its host is the Spark master: `local[*]` on one machine, a
cluster's master by configuration alone), with the batch session's own conf
(``infra.spark``) and this environment's Python. Light at parse time: no PySpark."""
from __future__ import annotations

from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from infra.airflow_env import SPARK_POOL
from infra.settings import load_settings
from infra.spark import SPARK_ENV, submit_conf

REPO_ROOT = Path(__file__).resolve().parent.parent


def batch_job(task_id: str, script: str, application_args: list[str], doc_md: str) -> SparkSubmitOperator:
    """A task running ``batch_layer/<script>`` with ``application_args`` (templated), in the
    Spark pool (one job at a time by default). The job's log (its progress: stage, rows,
    site-day) is the task's log."""
    settings = load_settings()
    return SparkSubmitOperator(
        task_id=task_id,
        doc_md=doc_md,
        application=str(REPO_ROOT / "batch_layer" / script),
        application_args=application_args,
        conn_id="spark_default",
        name=f"parallax-{task_id.replace('_', '-')}",
        conf=submit_conf(settings),
        env_vars=dict(SPARK_ENV),
        driver_memory=settings.spark.driver_memory,
        pool=SPARK_POOL,
        verbose=False,
    )

"""A failed batch run becomes an incident (the alarms notify admins): the DAGs' failure
callback. Light to import (the DAG file names it at parse time); no Airflow import."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from infra.clients import cassandra_session
from infra.settings import load_settings
from store.incidents import Incident, Incidents

log = logging.getLogger(__name__)


def incident_of(context: dict[str, Any], now: datetime) -> Incident:
    """The incident of a failed task, from its Airflow context."""
    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", None) or getattr(context.get("dag_run"), "run_id", "?")
    attempt = getattr(ti, "try_number", 1)
    error = context.get("exception")
    return Incident(f"batch_failed:{dag_id}:{run_id}:{task_id}:{attempt}", "batch_failed", "",
                    f"Batch run failed: {dag_id} / {task_id}", now,
                    {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "attempt": attempt,
                     "error": f"{type(error).__name__}: {error}" if error else None,
                     "log_url": getattr(ti, "log_url", None)})


def record_failure(context: dict[str, Any]) -> None:
    """on_failure_callback: record the failure (a callback that fails only logs: the run's
    own failure stands)."""
    settings = load_settings()
    try:
        session = cassandra_session(settings, settings.cassandra.keyspace)
        try:
            incident = incident_of(context, datetime.now(timezone.utc))
            Incidents(session, settings.cassandra.keyspace).record(incident)
            log.info("recorded incident %s", incident.id)
        finally:
            session.cluster.shutdown()
    except Exception:  # Cassandra away: the failure is in Airflow's own record still
        log.exception("could not record the batch failure as an incident")

"""Airflow's configuration for Parallax, as environment variables (Airflow's own mechanism)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from infra import proc
from infra.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)
# The pool every Spark task of the DAGs runs in (``settings.airflow.spark_slots``).
SPARK_POOL = "parallax_spark"
# The DAG that `parallax erase` and the admin API trigger for a request.
ERASURE_DAG = "parallax_erasure"


def airflow_env(settings: Settings) -> dict[str, str]:
    home = settings.paths.airflow_home
    master = settings.spark.master
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.airflow.port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{settings.airflow.port}",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.airflow.port + 713),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.airflow.port + 714),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # The Spark master the batch job is submitted to: local on one machine.
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": master}),
        # Spark's spark-submit lives beside this Python; the hook finds it on PATH.
        "PATH": _path_with(Path(sys.executable).parent),
    }


def _path_with(folder: Path) -> str:
    path = os.environ.get("PATH", "")
    return path if path.split(os.pathsep)[0] == str(folder) else f"{folder}{os.pathsep}{path}"


def apply(settings: Settings) -> None:
    """Put Airflow's variables into this process's environment (before importing airflow)."""
    for key, value in airflow_env(settings).items():
        os.environ[key] = value
    settings.paths.airflow_home.mkdir(parents=True, exist_ok=True)


def migrate_db(settings: Settings) -> None:
    """Airflow's database migrated, and the pool every Spark task of the DAGs runs in."""
    apply(settings)
    for command in (["db", "migrate"],
                    ["pools", "set", SPARK_POOL, str(settings.airflow.spark_slots),
                     "Parallax's Spark jobs (batch, reprocess, late data, erasure, compaction)"]):
        result = subprocess.run([sys.executable, "-m", "airflow", *command], capture_output=True, text=True)
        if result.returncode != 0:
            raise proc.ServiceError(f"airflow {' '.join(command[:2])} failed:\n{result.stdout[-2000:]}\n"
                                    f"{result.stderr[-3000:]}")


def trigger_dag(settings: Settings, dag_id: str, conf: dict, timeout: float = 180) -> tuple[bool, str]:
    """Trigger a run of ``dag_id`` with ``conf`` through Airflow's own command (it writes the
    run into Airflow's database; the scheduler starts it). (whether it did, what Airflow said)."""
    try:
        result = subprocess.run([sys.executable, "-m", "airflow", "dags", "trigger", dag_id, "--conf",
                                 json.dumps(conf)], env={**os.environ, **airflow_env(settings)}, capture_output=True,
                                text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    said = (result.stdout + result.stderr).strip().splitlines()
    return result.returncode == 0, said[-1] if said else ""


def trigger_dag_soon(settings: Settings, dag_id: str, conf: dict, what: str) -> threading.Thread:
    """``trigger_dag`` in a background thread (Airflow's command takes seconds to start), its
    outcome logged: for a web request, which answers at once."""
    def run() -> None:
        ok, said = trigger_dag(settings, dag_id, conf)
        if ok:
            log.info("triggered a run of %s for %s", dag_id, what)
        else:
            log.warning("could not trigger %s for %s (%s): its schedule takes it", dag_id, what, said or "no answer")

    thread = threading.Thread(target=run, name=f"trigger-{dag_id}", daemon=True)
    thread.start()
    return thread


# What `airflow standalone` runs, started one by one: standalone gives no way to stop its
# log servers, which listen on every interface, and nothing here may bind beyond 127.0.0.1.
# With the LocalExecutor on one machine the API server reads task logs from local files,
# so the log servers are not needed (--skip-serve-logs). No triggerer: no task defers.
COMPONENTS: dict[str, list[str]] = {
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "api-server": ["api-server", "--host", "127.0.0.1", "--workers", "1"],
}


def _paths(settings: Settings, component: str) -> tuple[Path, Path]:
    var = settings.paths.var_dir
    return var / "run" / f"airflow-{component}.pid", var / "logs" / f"airflow-{component}.log"


def start(settings: Settings, timeout: float = 300) -> None:
    env = {**airflow_env(settings),
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"}
    if not is_running(settings):
        proc.ensure_port_free("Airflow API server", "127.0.0.1", settings.airflow.port)
        migrate_db(settings)
    for component, args in COMPONENTS.items():
        pid_file, log_file = _paths(settings, component)
        argv = [sys.executable, "-m", "airflow", *args]
        if component == "api-server":
            argv += ["--port", str(settings.airflow.port)]
        proc.start_detached(f"Airflow {component}", argv, pid_file, log_file, env=env)
    pid_file, log_file = _paths(settings, "api-server")
    proc.wait_until("Airflow API server", lambda: proc.port_open("127.0.0.1", settings.airflow.port), timeout,
                    pid_file, log_file, 2)


def password_file(settings: Settings) -> Path:
    """Where Airflow's simple auth manager writes the generated password of user admin."""
    return settings.paths.airflow_home / "simple_auth_manager_passwords.json.generated"


def stop(settings: Settings) -> bool:
    return any([proc.stop_pid_file(f"Airflow {c}", _paths(settings, c)[0], timeout=60) for c in reversed(COMPONENTS)])


def is_running(settings: Settings) -> bool:
    return any(proc.read_pid(_paths(settings, c)[0]) is not None for c in COMPONENTS)

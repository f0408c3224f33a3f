"""gunicorn hooks for the collector (`parallax collect` passes ``--config python:collector.gunicorn_conf``):
prometheus_client's multiprocess mode, so that /metrics adds up every worker's samples.

The master picks a metrics directory per run before it forks the workers: the operator's
PROMETHEUS_MULTIPROC_DIR if set (emptied now: samples of an earlier run must not count),
else ``<var>/run/collector-metrics-<master pid>``, removed when the master exits. gunicorn
reads this module's public names as settings: only hooks are public here.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from infra.proc import pid_alive as _pid_alive
from infra.settings import load_settings as _load_settings

_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "collector-metrics-"
_created: list[Path] = []


def _run_dir() -> Path:
    return _load_settings().paths.var_dir / "run"


def _remove_stale(run_dir: Path) -> None:
    """Directories of earlier collectors that did not exit cleanly (SIGKILL)."""
    for old in run_dir.glob(_PREFIX + "*"):
        pid = old.name.removeprefix(_PREFIX)
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def on_starting(server: Any) -> None:
    given = os.environ.get(_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        run_dir = _run_dir()
        run_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale(run_dir)
        path = run_dir / f"{_PREFIX}{os.getpid()}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        _created.append(path)
        # Set before any worker is forked (and before anything imports prometheus_client in
        # a worker), so every worker writes its samples there.
        os.environ[_ENV] = str(path)
    server.log.info("collector metrics of all workers are gathered in %s", path)


def child_exit(server: Any, worker: Any) -> None:
    # Not at the top: prometheus_client picks its value class when first imported, which in
    # the master must come after on_starting set PROMETHEUS_MULTIPROC_DIR.
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)

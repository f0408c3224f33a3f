"""`parallax collect | serve | speed | batch`: the pipeline's processes."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from datetime import datetime

import click

from collector.app import create_app as create_collector
from infra.settings import Settings

log = logging.getLogger(__name__)


class Beside:
    """A process run beside this one (the live tail beside the speed layer's queries),
    started again when it exits (Kafka away at its start, say) until ``stop``."""

    def __init__(self, argv: list[str], name: str, restart_after_s: float = 5.0) -> None:
        self.argv, self.name, self.restart_after_s = argv, name, restart_after_s
        self._stopping = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def start(self) -> Beside:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._proc = subprocess.Popen(self.argv)
            if self._stopping.is_set():  # stopped while it was starting
                self._proc.terminate()
            code = self._proc.wait()
            if self._stopping.is_set():
                return
            log.warning("the %s exited (code %s); starting it again in %.0f s", self.name, code,
                        self.restart_after_s)
            self._stopping.wait(self.restart_after_s)

    def stop(self) -> None:
        self._stopping.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
        self._thread.join(timeout=30)


def _gunicorn(app: str, port: int, workers: int, threads: int, config: str | None = None,
              access_log: bool = True) -> None:
    # The access log leaves out the client's address and user agent: no raw IP is stored.
    # No control socket: its default path is shared by every gunicorn of the user.
    log = ["--access-logfile", "-", "--access-logformat", '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'] \
        if access_log else []
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), *log, "--no-control-socket", "--limit-request-line", "8190",
            "--graceful-timeout", "10", *(["--config", config] if config else []), app]
    os.execv(sys.executable, argv)


@click.command()
@click.option("--port", type=int, help="default: PARALLAX_COLLECTOR_PORT or 8001")
@click.option("--workers", default=2, show_default=True)
@click.option("--debug", is_flag=True, help="Flask's development server instead of gunicorn")
@click.option("--access-log", is_flag=True,
              help="a line per request on stdout (off by default: a tenth of the collector's CPU at full rate; "
                   "/metrics counts requests by status)")
@click.pass_obj
def collect(settings: Settings, port: int | None, workers: int, debug: bool, access_log: bool) -> None:
    """Run the collector (POST /api/collect) under gunicorn."""
    port = port or settings.collector.port
    if debug:
        create_collector(settings).run(host="127.0.0.1", port=port, debug=True)
        return
    # The hooks gather every worker's Prometheus samples for /metrics (multiprocess mode).
    # 12 threads a worker: a request holds its thread while Kafka acknowledges (the
    # producer's linger and more), so fewer threads cap the rate below what the CPU allows.
    _gunicorn("collector.wsgi:app", port, workers, 12, config="python:collector.gunicorn_conf", access_log=access_log)


@click.command()
@click.option("--port", type=int, help="default: PARALLAX_SERVING_PORT or 8000")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="processes; they share Socket.IO rooms through the Kafka message queue")
@click.option("--threads", default=256, show_default=True, type=click.IntRange(8, 10_000),
              help="threads per process: each open Socket.IO connection holds one")
@click.pass_obj
def serve(settings: Settings, port: int | None, workers: int, threads: int) -> None:
    """Run the serving layer (reports, accounts, Socket.IO live pushes) under gunicorn."""
    _gunicorn("serving_layer.wsgi:app", port or settings.serving.port, workers, threads)


@click.command()
@click.option("--rebuild", is_flag=True,
              help="move the views query's checkpoint aside and rebuild the speed views from Kafka")
@click.option("--no-tail", is_flag=True, help="without the live tail beside the queries (run `parallax tail` apart)")
@click.pass_obj
def speed(settings: Settings, rebuild: bool, no_tail: bool) -> None:
    """Run the speed layer's streaming queries, and its live tail, until interrupted."""
    from speed_layer.job import run  # noqa: PLC0415 -- PySpark: only this command loads it

    # The tail in a process of its own: it would otherwise share an interpreter lock with
    # the queries' Python sinks.
    beside = None if no_tail else Beside([sys.executable, "-m", "speed_layer.tail"], "live tail").start()
    try:
        code = run(settings, rebuild=rebuild)
    finally:
        if beside is not None:
            beside.stop()
    sys.exit(code)


@click.command()
@click.pass_obj
def tail(settings: Settings) -> None:
    """Run the live tail alone: the current minutes' counts on metrics.live, every 200 ms."""
    from speed_layer.tail import run  # noqa: PLC0415 -- with the speed layer's modules, not every command's

    sys.exit(run(settings))


@click.command()
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="the day to recompute, in each site's time zone")
def batch(day: datetime) -> None:
    """Recompute one day's exact views and move the batch boundary, for every site whose
    day has ended in its zone (the DAG submits the same job)."""
    from batch_layer.daily_views import main  # noqa: PLC0415 -- PySpark: only this command loads it

    sys.exit(main(["--day", day.date().isoformat()]))


@click.command()
@click.option("--no-delivery", is_flag=True, help="evaluate only; deliver email and webhooks elsewhere")
@click.pass_obj
def alerting(settings: Settings, no_delivery: bool) -> None:
    """Run the alert evaluator (rules on the live updates, system alarms) and the delivery of
    notifications by email and webhook, until interrupted. Run several to scale out."""
    import signal  # noqa: PLC0415

    from serving_layer.alerting import alarms, delivery, evaluator  # noqa: PLC0415
    from serving_layer.stores import LazyStore  # noqa: PLC0415

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    store = LazyStore(settings)()
    parts = [("evaluator", evaluator.run), ("alarms", alarms.run)]
    if not no_delivery:
        parts.append(("delivery", delivery.run))
    threads = [threading.Thread(target=fn, args=(settings, store, stop), name=name, daemon=True) for name, fn in parts]
    for t in threads:
        t.start()
    while not stop.is_set() and all(t.is_alive() for t in threads):
        stop.wait(1)
    dead = [] if stop.is_set() else [t.name for t in threads if not t.is_alive()]
    stop.set()
    for t in threads:
        t.join(timeout=30)
    if dead:  # a part stopped by itself: say so, and exit non-zero (a supervisor restarts it)
        click.echo(f"error: the alert {', '.join(dead)} stopped; see the log above", err=True)
        sys.exit(1)

"""`parallax demo`: the whole Lambda loop, live, on this machine.

Brings the stack up (with Airflow), starts collector, speed layer and serving layer,
sends yesterday's traffic late and today's traffic live, runs the nightly DAG for
yesterday through Airflow, and prints where to look. Ctrl-C stops what it started.
"""
from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from infra import proc
from infra.settings import Settings

log = logging.getLogger(__name__)

DEMO_SITES = {"shop.example": "shop.example.com", "blog.example": "blog.example.com", "docs.example": "docs.example.com"}
DEMO_ZONES = {"shop.example": "Europe/Paris", "blog.example": "America/New_York", "docs.example": "UTC"}


def _archive_commits(checkpoint_dir: Path) -> int:
    """How many micro-batches the archive query has committed (its checkpoint's commit log)."""
    commits = checkpoint_dir / "archive" / "commits"
    return max((int(p.name) + 1 for p in commits.glob("[0-9]*")), default=0) if commits.exists() else 0


def _airflow_token(settings: Settings, http: Any) -> str:
    users = json.loads((settings.airflow_home / "simple_auth_manager_passwords.json.generated").read_text())
    r = http.post(f"http://127.0.0.1:{settings.airflow_port}/auth/token",
                  json={"username": "admin", "password": users["admin"]}, timeout=30)
    r.raise_for_status()
    return r.json()["access_token"]


def trigger_nightly(settings: Settings, day: str, timeout: float = 900) -> str:
    """Trigger `parallax_nightly` for ``day`` through Airflow's REST API; wait for the end."""
    import requests

    http = requests.Session()
    base = f"http://127.0.0.1:{settings.airflow_port}/api/v2/dags/parallax_nightly"
    http.headers["Authorization"] = f"Bearer {_airflow_token(settings, http)}"
    run = http.post(f"{base}/dagRuns", json={"logical_date": None, "conf": {"day": day},
                                             "note": "parallax demo: reprocess yesterday"}, timeout=30)
    run.raise_for_status()
    run_id = run.json()["dag_run_id"]
    log.info("triggered Airflow run %s of parallax_nightly for %s", run_id, day)
    deadline = time.monotonic() + timeout
    state = "queued"
    while time.monotonic() < deadline:
        state = http.get(f"{base}/dagRuns/{run_id}", timeout=30).json()["state"]
        if state in ("success", "failed"):
            break
        log.info("nightly run for %s: %s ...", day, state)
        time.sleep(10)
    return state


def run_demo(settings: Settings, *, rate: float, with_airflow: bool) -> int:
    import requests

    from infra import stack
    from infra.clients import cassandra_session
    from infra.sites import add_site
    from infra.traffic import send, stream, visits_over
    from views.catalogue import local_day_bounds

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    children: list[proc.CliProcess] = []
    states = stack.status(settings)
    stack_was_up = states["kafka"] == states["cassandra"] == "ready"
    code = 0
    try:
        stack.up(settings, with_airflow=with_airflow)
        session = cassandra_session(settings, settings.keyspace)
        for site, domain in DEMO_SITES.items():
            add_site(session, settings.keyspace, site, [domain], DEMO_ZONES[site])
        session.cluster.shutdown()
        log.info("demo sites: %s", ", ".join(f"{s} ({DEMO_ZONES[s]})" for s in DEMO_SITES))

        children = [proc.CliProcess(name, [command], settings.var_dir / "logs" / f"demo-{name}.log").start()
                    for name, command in (("collector", "collect"), ("speed", "speed"), ("serving", "serve"))]
        collector = f"http://127.0.0.1:{settings.collector_port}"
        serving = f"http://127.0.0.1:{settings.serving_port}"
        for name, url in (("collector", f"{collector}/health"), ("serving layer", f"{serving}/api/v1/health")):
            proc.wait_until(name, lambda url=url: requests.get(url, timeout=2).ok, 90)

        # Each site's "yesterday" is a day of its own time zone.
        now = datetime.now(timezone.utc)
        yesterdays = {site: now.astimezone(ZoneInfo(tz)).date() - timedelta(days=1) for site, tz in DEMO_ZONES.items()}
        rng = random.Random(42)
        late = [v for site in DEMO_SITES
                for v in visits_over(rng, {site: DEMO_SITES[site]}, *local_day_bounds(yesterdays[site], DEMO_ZONES[site]), 100)]
        http = requests.Session()
        commits_before = _archive_commits(settings.checkpoint_dir)
        accepted = sum(len(v.events) for v in late if send(collector, v, http) == 202)
        log.info("sent %d of yesterday's events late (the speed layer leaves them to the batch layer)", accepted)

        traffic = threading.Thread(target=stream, args=(collector, DEMO_SITES, rate, stop), daemon=True)
        traffic.start()
        log.info("sending live traffic at about %.0f events/s", rate)

        days = sorted({d.isoformat() for d in yesterdays.values()})
        log.info("waiting for the archive to commit yesterday's events to the master dataset ...")
        # Two more commits: at least one micro-batch began after the late events were acknowledged.
        while not stop.is_set() and _archive_commits(settings.checkpoint_dir) < commits_before + 2:
            for c in children:
                c.check()
            stop.wait(3)
        for day in days:
            if stop.is_set():
                break
            if with_airflow:
                state = trigger_nightly(settings, day)
            else:
                result = subprocess.run([sys.executable, "-m", "infra.cli", "batch", "--date", day])
                state = "success" if result.returncode == 0 else "failed"
            log.info("batch run for %s: %s (a site whose %s has not ended in its zone yet waits for its "
                     "own night)", day, state, day)
            if state != "success":
                code = 1

        site = next(iter(DEMO_SITES))
        day, today = yesterdays[site].isoformat(), (yesterdays[site] + timedelta(days=1)).isoformat()
        print(f"""
================================ Parallax demo is live ================================
 Merged report (yesterday final from batch views, today from speed views):
   {serving}/api/v1/sites/{site}/report?from={day}&to={today}&granularity=hour   ({DEMO_ZONES[site]} days)
 Today by minute:
   {serving}/api/v1/sites/{site}/report?granularity=minute
 Live pushes over Socket.IO (room per site), in another terminal:
   .venv/bin/parallax watch {site}
 Airflow: http://127.0.0.1:{settings.airflow_port}  (user admin, password in
   {settings.airflow_home / 'simple_auth_manager_passwords.json.generated'})
 Logs: {settings.var_dir / 'logs'}
 Other sites: {', '.join(list(DEMO_SITES)[1:])}.   Ctrl-C stops everything the demo started.
========================================================================================
""", flush=True)
        while not stop.is_set():
            for c in children:
                c.check()
            stop.wait(2)
    except proc.ServiceError as exc:
        log.error("%s", exc)
        code = 1
    finally:
        stop.set()
        log.info("shutting down the demo ...")
        for c in reversed(children):
            c.stop()
        if not stack_was_up:
            stack.down(settings)
    return code

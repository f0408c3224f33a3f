"""`parallax demo`: the whole Lambda loop, live, on this machine.

Brings the stack up (with Airflow), starts collector, speed layer and serving layer,
serves the sample site (tools/sample_site) for a person to click around, sends the last
two days of traffic as fast as possible and today's live with `parallax generate`, runs
the nightly DAG for yesterday through Airflow, and prints where to look. Ctrl-C stops
what it started.
"""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from infra import airflow_env, proc, stack
from infra.clients import cassandra_session
from infra.settings import Settings
from speed_layer.checkpoints import archive_commits
from store.alerts import AlertRules, StoredRule
from store.provision import provision
from store.registry import Registry
from tools import sample_site
from tools.generator.model import site_specs
from views.alerts import Rule

log = logging.getLogger(__name__)

# The generated sites: `parallax generate --sites 3 --prefix ""` makes shop (Europe/Paris),
# blog (America/New_York) and docs (UTC); the sample site is sample_site.SITE_ID.
GENERATED_SITES, GENERATED_PREFIX = 3, ""
BACKFILL_EVENTS = 6000  # over the last 48 hours: yesterday in every zone, for the nightly run
# The demo's login: an admin made with `parallax user add --admin --generate-password`
# (a new password at every demo: there is no default one), and a read-only token for scripts.
DEMO_USER = "demo@example.com"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True)


def demo_login() -> tuple[str, str]:
    """The demo admin's password (new each run: generated and shown once) and an API token."""
    made = _cli("user", "add", DEMO_USER, "--admin", "--name", "Demo admin", "--generate-password")
    if made.returncode != 0 and "exists already" in made.stderr:
        made = _cli("user", "password", DEMO_USER, "--generate-password")
    if made.returncode != 0:
        raise proc.ServiceError(f"could not create the demo's user: {made.stderr.strip()}")
    password = made.stdout.rsplit("(shown once): ", 1)[1].strip()
    token = _cli("token", "create", DEMO_USER, "--name", "demo", "--read-only")
    if token.returncode != 0:
        raise proc.ServiceError(f"could not create the demo's token: {token.stderr.strip()}")
    return password, token.stdout.rsplit("(shown once): ", 1)[1].strip()


def _airflow_token(settings: Settings, http: Any) -> str:
    users = json.loads(airflow_env.password_file(settings).read_text())
    r = http.post(f"http://127.0.0.1:{settings.airflow.port}/auth/token",
                  json={"username": "admin", "password": users["admin"]}, timeout=30)
    r.raise_for_status()
    return r.json()["access_token"]


def trigger_nightly(settings: Settings, day: str, timeout: float = 900) -> str:
    """Trigger `parallax_nightly` for ``day`` through Airflow's REST API; wait for the end."""
    http = requests.Session()
    base = f"http://127.0.0.1:{settings.airflow.port}/api/v2/dags/parallax_nightly"
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


DEMO_RULE = "demo-burst"


def _demo_rule(rules: AlertRules) -> None:
    """An alert rule on the sample site: a few pageviews of a person clicking around fire
    it (live, to the demo admin), and it resolves once they stop."""
    rules.add(StoredRule(Rule(sample_site.SITE_ID, DEMO_RULE, "Sample site busy", "pageviews", 300, "above", 5,
                              resolve_after_s=60, created_by="demo"), {DEMO_USER: "live"}))


def _generated_sites() -> dict[str, str]:
    return {s.site: s.timezone for s in site_specs(GENERATED_SITES, GENERATED_PREFIX)}


def _generate_args(collector: str, truth: Path, *extra: str) -> list[str]:
    return ["generate", "--sites", str(GENERATED_SITES), "--prefix", GENERATED_PREFIX, "--collector", collector,
            "--truth", str(truth), *extra]


def run_demo(settings: Settings, *, rate: float, with_airflow: bool) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    children: list[proc.CliProcess] = []
    site_server: sample_site.SampleSite | None = None
    stack_was_up = stack.is_up(settings)
    zones = _generated_sites()
    truth_dir = settings.paths.var_dir / "demo"
    code = 0
    try:
        proc.ensure_port_free("the sample site", "127.0.0.1", settings.demo.sample_site_port)
        stack.up(settings, with_airflow=with_airflow)
        provision(settings)
        session = cassandra_session(settings, settings.cassandra.keyspace)
        sample_site.register(Registry(session, settings.cassandra.keyspace))
        password, token = demo_login()
        _demo_rule(AlertRules(session, settings.cassandra.keyspace))
        session.cluster.shutdown()

        children = [proc.CliProcess(name, [command], settings.paths.var_dir / "logs" / f"demo-{name}.log").start()
                    for name, command in (("collector", "collect"), ("speed", "speed"), ("serving", "serve"),
                                          ("alerting", "alerting"))]
        collector = f"http://127.0.0.1:{settings.collector.port}"
        serving = f"http://127.0.0.1:{settings.serving.port}"
        for name, url in (("collector", f"{collector}/health"), ("serving layer", f"{serving}/api/v1/health")):
            proc.wait_until(name, lambda url=url: requests.get(url, timeout=2).ok, 90)
        site_server = sample_site.SampleSite(settings.demo.sample_site_port, sample_site.SITE_ID, collector,
                                             serving).start()

        # Each site's "yesterday" is a day of its own time zone; the last 48 hours hold it
        # in every zone. Sent as fast as possible now, most of it is late for the speed
        # layer (behind its watermark): the nightly batch counts it.
        now = datetime.now(timezone.utc)
        yesterdays = {site: now.astimezone(ZoneInfo(tz)).date() - timedelta(days=1) for site, tz in zones.items()}
        commits_before = archive_commits(settings.paths.checkpoint_dir)
        log.info("sending the last 48 hours of traffic (%d events) with `parallax generate --max` ...",
                 BACKFILL_EVENTS)
        backfill = subprocess.run([sys.executable, "-m", "cli", *_generate_args(
            collector, truth_dir / "backfill.jsonl", "--max", "--events", str(BACKFILL_EVENTS), "--window", "48h",
            "--seed", "42")])
        if backfill.returncode != 0 and not stop.is_set():
            raise proc.ServiceError(f"`parallax generate` for the last 48 hours failed ({backfill.returncode})")

        live = proc.CliProcess("generate", _generate_args(collector, truth_dir / "live.jsonl", "--rate", f"{rate:g}",
                                                          "--seed", "7"),
                               settings.paths.var_dir / "logs" / "demo-generate.log")
        children.append(live.start())
        log.info("sending live traffic at about %g events/s (log: %s)", rate, live.log_path)

        days = sorted({d.isoformat() for d in yesterdays.values()})
        log.info("waiting for the archive to commit yesterday's events to the master dataset ...")
        # Two more commits: at least one micro-batch began after the late events were acknowledged.
        while not stop.is_set() and archive_commits(settings.paths.checkpoint_dir) < commits_before + 2:
            for c in children:
                c.check()
            stop.wait(3)
        for day in days:
            if stop.is_set():
                break
            if with_airflow:
                state = trigger_nightly(settings, day)
            else:
                result = subprocess.run([sys.executable, "-m", "cli", "batch", "--date", day])
                state = "success" if result.returncode == 0 else "failed"
            log.info("batch run for %s: %s (a site whose %s has not ended in its zone yet waits for its "
                     "own night)", day, state, day)
            if state != "success":
                code = 1

        if not stop.is_set():
            print(_banner(settings, site_server.url, serving, zones, yesterdays, truth_dir, with_airflow, password,
                          token), flush=True)
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
        if site_server is not None:
            site_server.stop()
        if not stack_was_up:
            stack.down(settings)
    return code


def _banner(settings: Settings, sample_url: str, serving: str, zones: dict[str, str],
            yesterdays: dict[str, Any], truth_dir: Path, with_airflow: bool, password: str, token: str) -> str:
    site = next(iter(zones))
    day, today = yesterdays[site].isoformat(), (yesterdays[site] + timedelta(days=1)).isoformat()
    airflow = (f" Airflow: http://127.0.0.1:{settings.airflow.port}  (user admin, password in\n"
               f"   {airflow_env.password_file(settings)})\n") if with_airflow else ""
    return f"""
================================ Parallax demo is live ================================
 The dashboard: {serving}/sites/{sample_site.SITE_ID}?range=today   ({serving}/sites/{site} for generated traffic)
 Log in as {DEMO_USER}, password (new at every demo, shown once):
   {password}
 Scripts send the demo's read-only API token (shown once); for the commands below:
   export PARALLAX_TOKEN={token}
 The sample site: open it in a browser, click around, sign up:
   {sample_url}/
 and watch your own visit arrive on the dashboard (site "{sample_site.SITE_ID}") within seconds, or:
   curl -H "Authorization: Bearer $PARALLAX_TOKEN" {serving}/api/v1/sites/{sample_site.SITE_ID}/realtime
   .venv/bin/parallax watch {sample_site.SITE_ID}        (Socket.IO room site:{sample_site.SITE_ID})
 More than 5 pageviews there in 5 minutes fire the alert rule "Sample site busy":
   curl -H "Authorization: Bearer $PARALLAX_TOKEN" {serving}/api/v1/me/notifications
   {serving}/api/v1/sites/{sample_site.SITE_ID}/breakdown?dimension=element&metrics=impressions,clicks,ctr
 Generated traffic (`parallax generate`) on {', '.join(f'{s} ({z})' for s, z in zones.items())}:
   merged report, yesterday final from batch views, today from speed views:
   {serving}/api/v1/sites/{site}/report?from={day}&to={today}&granularity=hour
   today by minute: {serving}/api/v1/sites/{site}/report?granularity=minute
   goals: {serving}/api/v1/sites/{site}/breakdown?dimension=goal&metrics=conversions,conversion_rate
   the API's contract: {serving}/api/v1/openapi.json
   what was sent (ground truth and summaries): {truth_dir}
{airflow} Logs: {settings.paths.var_dir / 'logs'}
 Ctrl-C stops everything the demo started.
========================================================================================
"""

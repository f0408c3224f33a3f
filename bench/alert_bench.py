"""Alert latency: the time from the event that crosses a rule's threshold (its 202 from the
collector) to the notification on a subscribed Socket.IO client, with every process at its
default settings (the speed layer's 5 s trigger, the evaluator's 1 s per site).

    .venv/bin/python -m bench.alert_bench --trials 30

Needs the local stack (`parallax stack up`). Starts a collector, the speed layer, a serving
process and `parallax alerting`. Each trial has a site of its own with one rule (pageviews
over 5 minutes above 3, resolved at once): three pageviews are sent and counted first (no
alert), then the fourth, timed from its 202 to the "alert.fired" notification. Trials start
every few seconds, so several are in flight as on a busy install; optional background load
(``--rate`` events/s on another site) shares the machine with them.
"""
from __future__ import annotations

import argparse
import json
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import psutil
import requests
import socketio

from bench.collector_load import DOMAIN, SITE, run_load
from bench.common import machine, pct, reader_token
from infra.clients import cassandra_session
from infra.proc import CliProcess, free_port, wait_until
from infra.settings import load_settings
from store.alerts import AlertRules, StoredRule
from tools.synthetic import tracker_event
from views.alerts import Rule

BENCH_USER = "bench-alerts@example.com"  # reader_token's admin for this bench
THRESHOLD = 3


class Watcher:
    """A dashboard's socket: when each site's notification arrived."""

    def __init__(self, serving: str, token: str) -> None:
        self.fired: dict[str, float] = {}
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("notification", self._got)
        self.sio.connect(serving, transports=["websocket"], auth={"token": token}, wait_timeout=20)

    def _got(self, data: dict[str, Any]) -> None:
        if data.get("kind") == "alert.fired":
            self.fired.setdefault(data["site"], time.perf_counter())

    def subscribe(self, site: str) -> None:
        done = threading.Event()
        self.sio.on("subscribed", lambda data: done.set())
        self.sio.emit("subscribe", {"site": site})
        if not done.wait(20):
            raise RuntimeError(f"not subscribed to {site}")


def trial(collector: str, site: str, watcher: Watcher, results: dict[str, Any]) -> None:
    http = requests.Session()

    def send(n: int) -> float:
        now = int(time.time() * 1000)
        events = [tracker_event(now + i, f"https://{DOMAIN}/p", visitor_id=f"v{i}") for i in range(n)]
        r = http.post(f"{collector}/api/collect", json={"site": site, "events": events}, timeout=30)
        assert r.status_code == 202, r.text
        return time.perf_counter()

    send(THRESHOLD)
    time.sleep(15)  # counted by the speed layer, evaluated: at the threshold, not above it
    if site in watcher.fired:
        results["early"].append(site)
        return
    acked = send(1)
    deadline = time.monotonic() + 120
    while site not in watcher.fired and time.monotonic() < deadline:
        time.sleep(0.01)
    if site in watcher.fired:
        results["latencies"].append(watcher.fired[site] - acked)
    else:
        results["missed"].append(site)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between trials' starts")
    parser.add_argument("--rate", type=float, default=0, help="background events/s on another site")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    run = uuid.uuid4().hex[:6]
    sites = [f"bench-alert-{run}-{i}" for i in range(args.trials)]
    token = reader_token(settings, "alerts", {**dict.fromkeys(sites, DOMAIN), SITE: DOMAIN})
    session = cassandra_session(settings, settings.cassandra.keyspace)
    rules = AlertRules(session, settings.cassandra.keyspace)
    for site in sites:
        rules.add(StoredRule(Rule(site, "burst", "burst", "pageviews", 300, "above", THRESHOLD, resolve_after_s=0),
                             {BENCH_USER: "live"}))

    logs = settings.paths.var_dir / "logs"
    cport, sport = free_port(), free_port()
    unlimited = {"PARALLAX_RATE_LIMIT_IP": "off", "PARALLAX_RATE_LIMIT_SITE": "off"}
    services = [CliProcess("collector", ["collect", "--port", str(cport)], logs / "bench-alert-collector.log",
                           env=unlimited).start(),
                CliProcess("speed", ["speed", "--no-tail"], logs / "bench-alert-speed.log",
                           env={"PARALLAX_STARTING_OFFSETS": "latest"}).start(),
                CliProcess("serving", ["serve", "--port", str(sport)], logs / "bench-alert-serving.log").start(),
                CliProcess("alerting", ["alerting"], logs / "bench-alert-alerting.log",
                           env={"PARALLAX_COLLECTOR_PORT": str(cport)}).start()]
    collector, serving = f"http://127.0.0.1:{cport}", f"http://127.0.0.1:{sport}"
    results: dict[str, Any] = {"latencies": [], "early": [], "missed": []}
    load: dict[str, Any] = {}
    try:
        wait_until("the collector", lambda: requests.get(f"{collector}/health", timeout=2).ok, 90)
        wait_until("the serving layer", lambda: requests.get(f"{serving}/api/v1/health", timeout=2).ok, 90)
        wait_until("the speed layer's JVM", lambda: bool(psutil.Process(services[1].proc.pid).children()), 90)
        time.sleep(45)  # the speed layer's first micro-batches
        watcher = Watcher(serving, token)
        for site in sites:
            watcher.subscribe(site)
        background = None
        if args.rate:
            background = threading.Thread(target=lambda: load.update(run_load(
                "paced", cport, procs=1, connections=8, warmup=5, duration=args.trials * args.every + 60,
                rate_rps=args.rate / 20, groups={}, seed=3, max_rps=0, reconnect_every=10_000)))
            background.start()
        threads = []
        for site in sites:
            t = threading.Thread(target=trial, args=(collector, site, watcher, results))
            t.start()
            threads.append(t)
            time.sleep(args.every)
        for t in threads:
            t.join()
        if background is not None:
            background.join()
        watcher.sio.disconnect()
    finally:
        for s in reversed(services):
            s.stop()
        for site in sites:
            rules.remove(site, "burst")
        session.cluster.shutdown()
    lat = sorted(results["latencies"])
    print(json.dumps({
        "machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "trials": args.trials, "fired": len(lat), "fired_early": len(results["early"]),
        "missed": len(results["missed"]), "background_events_per_s": load.get("events_per_s", 0),
        "speed_trigger": settings.speed.trigger, "evaluator_min_interval_s": settings.alerts.min_interval_s,
        "p50_s": round(pct(lat, 0.5), 3), "p95_s": round(pct(lat, 0.95), 3),
        "max_s": round(lat[-1], 3) if lat else None,
    }, indent=2))


if __name__ == "__main__":
    main()

"""Event to screen: the time from an event's 202 at the collector to the Socket.IO push that
shows it on a dashboard, while the collector takes a steady load (5,000 events/s), with the
speed layer at its default settings (and its live tail beside it).

    .venv/bin/python -m bench.live_bench --rate 5000 --warmup 60 --duration 120

Needs the local stack (`parallax stack up`). Starts a collector, the speed layer (`parallax
speed`, its default trigger; it starts the tail) and a serving process, each with this
machine's default settings. A probe posts one event at a time to a site of its own (five a
second) and a dashboard's socket watches that site: a probe's latency is from its 202 to
the first push whose count of its minute includes it, from the tail or from the speed
layer; the speed layer's own pushes are timed apart.
"""
from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

import psutil
import requests
import socketio

from bench.collector_load import DOMAIN, SITE, run_load
from bench.common import machine, pct, reader_token
from infra.proc import CliProcess, free_port, wait_until
from infra.settings import load_settings
from tools.synthetic import tracker_event

PROBE_SITE = "bench-live-probe"
BATCH = 20  # events per load request (collector_load's)


class Probe:
    """Events posted one at a time to the probe site, and the pushes that count them."""

    def __init__(self, collector: str, serving: str, token: str, every_s: float) -> None:
        self.collector, self.every_s = collector, every_s
        self.sent: list[tuple[str, int, float]] = []  # (minute, its n-th probe event, time of the 202)
        self.pushes: list[tuple[float, str, dict[str, int]]] = []  # (arrival, source, minute -> events)
        self.stop = threading.Event()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("metrics", self._pushed)
        self.sio.connect(serving, transports=["websocket"], auth={"token": token}, wait_timeout=20)
        subscribed = threading.Event()
        self.sio.on("subscribed", lambda data: subscribed.set())
        self.sio.emit("subscribe", {"site": PROBE_SITE})
        if not subscribed.wait(20):
            raise RuntimeError("the probe's socket was not subscribed")

    def _pushed(self, data: dict[str, Any]) -> None:
        at = time.perf_counter()
        self.pushes.append((at, data.get("source", "speed"), {b["start"]: b["events"] for b in data["buckets"]}))

    def run(self) -> None:
        http = requests.Session()
        per_minute: dict[str, int] = {}
        while not self.stop.is_set():
            now = datetime.now(timezone.utc)
            minute = now.replace(second=0, microsecond=0).isoformat()
            event = tracker_event(int(now.timestamp() * 1000), f"https://{DOMAIN}/probe", visitor_id="probe")
            r = http.post(f"{self.collector}/api/collect", json={"site": PROBE_SITE, "events": [event]}, timeout=30)
            if r.status_code == 202:
                per_minute[minute] = per_minute.get(minute, 0) + 1
                self.sent.append((minute, per_minute[minute], time.perf_counter()))
            self.stop.wait(self.every_s)

    def latencies(self, since: float, sources: set[str]) -> list[float]:
        """Per probe sent after ``since``: from its 202 to the first push of ``sources``
        counting it (a probe no such push counted is left out, and counted apart)."""
        out = []
        for minute, nth, acked in self.sent:
            if acked < since:
                continue
            first = next((at for at, source, counts in self.pushes
                          if source in sources and at >= acked and counts.get(minute, 0) >= nth), None)
            if first is not None:
                out.append(first - acked)
        return out


def _summary(lat: list[float], sent: int) -> dict[str, Any]:
    lat = sorted(lat)
    return {"probes": sent, "shown": len(lat), "p50_s": round(pct(lat, 0.5), 3), "p95_s": round(pct(lat, 0.95), 3),
            "p99_s": round(pct(lat, 0.99), 3), "max_s": round(lat[-1], 3) if lat else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=5000, help="events per second of background load")
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--probe-every", type=float, default=0.2, help="seconds between probe events")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    token = reader_token(settings, "live", {SITE: DOMAIN, PROBE_SITE: DOMAIN})

    logs = settings.paths.var_dir / "logs"
    cport, sport = free_port(), free_port()
    unlimited = {"PARALLAX_RATE_LIMIT_IP": "off", "PARALLAX_RATE_LIMIT_SITE": "off"}
    services = [CliProcess("collector", ["collect", "--port", str(cport)], logs / "bench-live-collector.log",
                           env=unlimited).start(),
                CliProcess("speed", ["speed"], logs / "bench-live-speed.log",
                           env={"PARALLAX_STARTING_OFFSETS": "latest"}).start(),
                CliProcess("serving", ["serve", "--port", str(sport)], logs / "bench-live-serving.log").start()]
    collector, serving = f"http://127.0.0.1:{cport}", f"http://127.0.0.1:{sport}"
    try:
        wait_until("the collector", lambda: requests.get(f"{collector}/health", timeout=2).ok, 90)
        wait_until("the serving layer", lambda: requests.get(f"{serving}/api/v1/health", timeout=2).ok, 90)
        # The speed layer's JVM and its tail are its children.
        wait_until("the speed layer's JVM and tail", lambda: len(psutil.Process(services[1].proc.pid).children()) >= 2,
                   90)
        probe = Probe(collector, serving, token, args.probe_every)
        prober = threading.Thread(target=probe.run)
        prober.start()
        marks: dict[str, float] = {}

        def timed_window() -> None:  # run_load's midpoint: the timed window began half its length ago
            marks["start"] = time.perf_counter() - args.duration / 2

        groups = {name: [p, *p.children(recursive=True)] for name, p in
                  (("speed", psutil.Process(services[1].proc.pid)), ("serving", psutil.Process(services[2].proc.pid)),
                   ("collector", psutil.Process(services[0].proc.pid)))}
        load = run_load("paced", cport, procs=1, connections=16, warmup=args.warmup, duration=args.duration,
                        rate_rps=args.rate / BATCH, groups=groups, seed=7, max_rps=0, reconnect_every=10_000,
                        during=timed_window)
        time.sleep(15)  # the last probes' pushes
        probe.stop.set()
        prober.join()
        probe.sio.disconnect()
    finally:
        for s in reversed(services):
            s.stop()
    since = marks["start"]
    sent = sum(1 for _, _, acked in probe.sent if acked >= since)
    results = {"machine": machine(), "load_events_per_s": load["events_per_s"], "load_statuses": load["statuses"],
               "cores": load["cores"], "first_push": _summary(probe.latencies(since, {"tail", "speed"}), sent),
               "speed_push": _summary(probe.latencies(since, {"speed"}), sent),
               "speed_trigger": settings.speed.trigger}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

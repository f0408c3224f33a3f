"""Fan-out: 1,000 dashboards' Socket.IO connections (websocket) across 10 sites, on two
serving processes that share rooms through the Kafka message queue; the time from a live
update produced to Kafka `metrics.live` until every client of its site has it.

    .venv/bin/python -m bench.fanout_bench --clients 1000 --sites 10 --updates 200

Needs the local stack (`parallax stack up`). Starts two serving processes (`parallax
serve`); client processes (python-socketio's asyncio client) split the connections evenly
between them. Each update carries the time it was produced; a client notes when it
arrived (one machine, one clock). Memory per connection: the serving processes' resident
memory with every client connected, less without any, over the clients.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import statistics
import time
from typing import Any

import psutil
import requests
import socketio

from bench.common import machine, pct, reader_token
from infra.clients import kafka_producer
from infra.proc import CliProcess, free_port, wait_until
from infra.settings import load_settings

SITES_PREFIX = "bench-fanout-"


def clients_process(urls: list[str], sites: list[str], token: str, n: int, offset: int, ready: Any, done: Any,
                    results: Any) -> None:
    """``n`` clients (client i on ``urls[i % 2]``, watching ``sites[i % len]``); each notes
    the arrival of every update until ``done`` is set."""

    async def main() -> None:
        arrivals: list[tuple[str, int, float]] = []  # (site, update id, seconds after it was produced)
        clients = []

        async def one(i: int) -> None:
            sio = socketio.AsyncClient(reconnection=False)
            site = sites[i % len(sites)]
            subscribed = asyncio.Event()

            @sio.on("metrics")
            async def metrics(data: dict) -> None:
                arrivals.append((data["site"], data["batch_id"], time.time() - data["produced_at"]))

            @sio.on("subscribed")
            async def ok(data: dict) -> None:
                subscribed.set()

            await sio.connect(urls[i % len(urls)], transports=["websocket"], auth={"token": token},
                              wait_timeout=60)
            await sio.emit("subscribe", {"site": site})
            await asyncio.wait_for(subscribed.wait(), 60)
            clients.append(sio)

        for start in range(0, n, 50):  # 50 connections at a time
            await asyncio.gather(*(one(offset + i) for i in range(start, min(n, start + 50))))
        ready.put(len(clients))
        while not done.is_set():
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        results.put(arrivals)
        await asyncio.gather(*(c.disconnect() for c in clients))

    asyncio.run(main())


def rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        p = psutil.Process(pid)
        total += sum(x.memory_info().rss for x in (p, *p.children(recursive=True)))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--updates", type=int, default=200, help="live updates produced, spread over the sites")
    parser.add_argument("--per-second", type=float, default=5.0, help="updates produced per second")
    parser.add_argument("--client-processes", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    sites = [f"{SITES_PREFIX}{i}" for i in range(args.sites)]
    token = reader_token(settings, "fanout", dict.fromkeys(sites, "fanout.test"))

    threads = args.clients // 2 + 64  # a websocket holds a thread of its process
    ports = [free_port(), free_port()]
    servers = [CliProcess(f"serving-{i}", ["serve", "--port", str(p), "--threads", str(threads)],
                          settings.paths.var_dir / "logs" / f"bench-fanout-serving-{i}.log").start()
               for i, p in enumerate(ports)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    ctx = mp.get_context("spawn")
    procs: list[Any] = []
    try:
        for url in urls:
            wait_until(url, lambda url=url: requests.get(f"{url}/api/v1/health", timeout=2).ok, 90)
        time.sleep(10)  # both processes in the live consumer group
        idle = rss([s.proc.pid for s in servers])
        ready, done, results = ctx.Queue(), ctx.Event(), ctx.Queue()
        per = args.clients // args.client_processes
        for k in range(args.client_processes):
            p = ctx.Process(target=clients_process, args=(urls, sites, token, per, k * per, ready, done, results))
            p.start()
            procs.append(p)
        connected = sum(ready.get(timeout=600) for _ in procs)
        loaded = rss([s.proc.pid for s in servers])
        producer = kafka_producer(settings)
        for u in range(args.updates):
            site = sites[u % len(sites)]
            update = {"site": site, "source": "speed", "granularity": "minute", "batch_id": u,
                      "produced_at": time.time(),
                      "buckets": [{"start": "2026-12-01T00:00:00+00:00", "pageviews": u, "events": u, "visitors": 1}]}
            producer.send(settings.kafka.topic_live, key=site.encode(), value=json.dumps(update).encode())
            producer.flush()
            time.sleep(1 / args.per_second)
        producer.close()
        done.set()
        arrivals = [a for _ in procs for a in results.get(timeout=120)]
    finally:
        for p in procs:
            p.join(timeout=60)
        for s in servers:
            s.stop()
    per_update: dict[int, list[float]] = {}
    for _, u, latency in arrivals:
        per_update.setdefault(u, []).append(latency)
    expected = args.clients // args.sites
    complete = sorted(max(v) for v in per_update.values() if len(v) == expected)
    every = sorted(x for v in per_update.values() for x in v)
    print(json.dumps({
        "machine": machine(), "clients": connected, "sites": args.sites, "updates": args.updates,
        "updates_reaching_every_client": len(complete), "deliveries": len(every),
        "deliveries_expected": args.updates * expected,
        "until_every_client_s": {"p50": round(pct(complete, 0.5), 3), "p95": round(pct(complete, 0.95), 3),
                                 "max": round(complete[-1], 3) if complete else None},
        "per_delivery_s": {"p50": round(pct(every, 0.5), 3), "p95": round(pct(every, 0.95), 3),
                           "mean": round(statistics.mean(every), 3) if every else None},
        "memory_per_connection_kib": round((loaded - idle) / max(1, connected) / 1024, 1),
        "serving_rss_mib": {"idle": round(idle / 2**20), "connected": round(loaded / 2**20)},
    }, indent=2))


if __name__ == "__main__":
    main()

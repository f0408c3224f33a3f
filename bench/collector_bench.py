"""Collector benchmark: events/s accepted into Kafka with 20-event batches, p50/p99 request
latency at half that rate, and a bare kafka-python producer pushing the same events beside it.

    .venv/bin/python -m bench.collector_bench --workers 2 4 --duration 30

For each worker count it starts its own collector (`parallax collect --port P --workers W`,
12 threads a worker as the CLI sets, rate limits off) writing to a Kafka topic of its own
(3 partitions, deleted at the end), for a site of its own, and sends requests until every
worker has connected to Kafka and Cassandra (each does so at its first request). Then:

- **saturation**: load-generator processes keep ``--connections`` keep-alive connections
  busy (closed loop: the next request leaves when the answer came back) for ``--duration``
  seconds after a ``--warmup``; the rate is the events of the 202 answers that came back in
  the timed window, per second. A connection is replaced after ``--reconnect-every``
  requests, as visitors come and go: connections opened once while the collector idles
  would all stay on the worker that happened to accept them;
- **latency**: the same processes send at half that rate on a fixed schedule (open loop:
  a request's latency runs from when it was *due*, so a slow answer that delays later
  requests counts against them too: no coordinated omission);
- after each run the topic's message count (end offsets minus those before) must equal the
  events acknowledged with a 202: nothing acknowledged is missing, nothing unacknowledged
  slipped in.

The bare producer is kafka-python, the design's client (``infra.clients.kafka_producer`` with
the collector's former settings: acks=all, idempotent, linger 5 ms). It sends the same
enriched events, already serialized, one message per event with the collector's key, as
fast as it can, to a topic of its own: one producer process, then as many as
``--bare-procs`` says. The ratio is the collector's rate over the first (one bare
kafka-python producer). The collector itself produces with confluent-kafka (librdkafka,
``collector.kafka_sink``); the same producer, bare, runs too (``--bare-confluent-procs``),
20 records at a time as a request sends them: what Kafka costs the collector.

The load generator is Python on the same machine: raw HTTP/1.1 over non-blocking sockets
(one epoll loop per process), request bytes built before the clock starts, fresh event ids
in every request. It shares the cores with the collector, Kafka and Cassandra; the CPU
each of them used in the timed window is measured (psutil) and printed, and so is where a
request's CPU goes (each step timed in this process). Needs the local stack (`parallax
stack up`). Prints one JSON line per run and Markdown tables for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from importlib.metadata import version
from typing import Any

import psutil
from confluent_kafka import libversion
from prometheus_client.parser import text_string_to_metric_families

from bench.collector_load import BATCH, DOMAIN, SITE, USER_AGENT, make_batches, run_load
from bench.collector_producers import run_bare, topic_count
from bench.common import machine, service_processes
from collector import events
from collector.app import create_app
from collector.enrichment import describe_client
from collector.kafka_sink import to_json
from infra.clients import cassandra_session, create_topics, delete_topics
from infra.proc import CliProcess, free_port, wait_until
from infra.settings import Settings, load_settings
from store.registry import Registry

THREADS = 12  # what `parallax collect` gives each worker (cli/services.py)


def scrape(url: str) -> dict[str, float]:
    """The collector's own counters, added up over its workers (GET /metrics)."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("parallax_collector_events_accepted_total", "parallax_collector_kafka_ack_seconds_sum",
                          "parallax_collector_kafka_ack_seconds_count"):
                out[s.name] = out.get(s.name, 0.0) + s.value
            elif s.name.startswith("parallax_collector_request_seconds_") and s.labels.get("status") == "202" \
                    and s.name.endswith(("_sum", "_count")):
                out[s.name] = s.value
    return out


def prewarm(url: str, gunicorn_workers: list[Any], settings: Settings, timeout: float = 90.0) -> int:
    """Each worker makes its Kafka producer and Cassandra session at its first request (a
    second or two): bursts of concurrent requests on fresh connections, until every worker
    is connected to both, so that none pays for it in a timed window. Returns the requests sent."""
    wanted = {settings.kafka.host_port[1], settings.cassandra.port}

    def connected(w: Any) -> bool:
        return wanted <= {c.raddr.port for c in w.net_connections("tcp") if c.raddr}

    def post(body: bytes) -> int:
        req = urllib.request.Request(f"{url}/api/collect", data=body, method="POST",
                                     headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": USER_AGENT})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status

    deadline, sent, burst = time.monotonic() + timeout, 0, 4 * len(gunicorn_workers)
    with ThreadPoolExecutor(burst) as pool:
        while not all(connected(w) for w in gunicorn_workers):
            if time.monotonic() > deadline:
                raise RuntimeError("not every collector worker connected to Kafka and Cassandra")
            bodies = [json.dumps({"site": SITE, "events": ev}, separators=(",", ":")).encode()
                      for _, ev in make_batches(burst, seed=random.randrange(1 << 30))]
            statuses = list(pool.map(post, bodies))
            sent += len(bodies)
            assert set(statuses) == {202}, statuses
    return sent


def bench_collector(settings: Settings, args: argparse.Namespace, workers: int, topic: str, invalid_topic: str,
                    services: dict[str, list[Any]]) -> dict[str, Any]:
    port = free_port()
    env = {"PARALLAX_TOPIC_EVENTS": topic, "PARALLAX_TOPIC_INVALID": invalid_topic,
           "PARALLAX_RATE_LIMIT_IP": "off", "PARALLAX_RATE_LIMIT_SITE": "off"}
    log_path = settings.paths.var_dir / "logs" / f"collector-bench-w{workers}.log"
    svc = CliProcess(f"collector (bench, {workers} workers)",
                     ["collect", "--port", str(port), "--workers", str(workers)], log_path, env=env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("the collector's /health", lambda: urllib.request.urlopen(f"{url}/health", timeout=5).status == 200,
                   timeout=90)
        master = psutil.Process(svc.proc.pid)
        wait_until(f"{workers} gunicorn workers", lambda: len(master.children()) == workers, timeout=60)
        gunicorn_workers = master.children()
        groups = {"collector": [master, *gunicorn_workers], **services,
                  **{f"worker:{w.pid}": [w] for w in gunicorn_workers}}
        spread: dict[str, list[int]] = {}

        def connections_per_worker() -> None:
            spread["connections_per_worker"] = sorted(
                (sum(1 for c in w.net_connections("tcp") if c.status == "ESTABLISHED" and c.laddr.port == port)
                 for w in gunicorn_workers), reverse=True)

        def account(run: dict[str, Any], before: int, metrics_before: dict) -> tuple[int, dict]:
            """After a run: CPU per worker, the topic's growth against the 202s, and the
            mean Kafka acknowledgement time; returns the topic's count and the metrics."""
            run["cores_per_worker"] = sorted((run["cores"].pop(f"worker:{w.pid}") for w in gunicorn_workers),
                                             reverse=True)
            after = topic_count(settings, topic)
            run["kafka_messages"] = after - before
            run["nothing_missing"] = after - before == run["accepted_events_all"]
            m = scrape(url)

            def delta(name: str) -> float:
                return m.get(name, 0) - metrics_before.get(name, 0)

            acks = delta("parallax_collector_kafka_ack_seconds_count")
            run["kafka_ack_mean_ms"] = (round(1000 * delta("parallax_collector_kafka_ack_seconds_sum") / acks, 1)
                                        if acks else None)
            return after, m

        result: dict[str, Any] = {"workers": workers, "threads": THREADS,
                                  "prewarm_requests": prewarm(url, gunicorn_workers, settings)}
        before, metrics_before = topic_count(settings, topic), scrape(url)
        sat = run_load("closed", port, args.procs, args.connections, args.warmup, args.duration, 0.0, groups,
                       seed=workers * 10 + 1, max_rps=args.max_rps, reconnect_every=args.reconnect_every,
                       during=connections_per_worker)
        sat.update(spread)
        after, m = account(sat, before, metrics_before)
        sat["collector_counted"] = round(m.get("parallax_collector_events_accepted_total", 0)
                                         - metrics_before.get("parallax_collector_events_accepted_total", 0))
        result["saturation"] = sat
        print(json.dumps({"run": "saturation", "workers": workers, **sat}), flush=True)

        rate = sat["events_per_s"] / 2 / BATCH  # requests/s at half the saturation rate
        before, metrics_before = after, m
        lat = run_load("paced", port, args.procs, max(args.procs, 8), args.warmup, args.latency_duration, rate, groups,
                       seed=workers * 10 + 2, max_rps=args.max_rps, reconnect_every=args.reconnect_every)
        account(lat, before, metrics_before)
        result["half_rate"] = lat
        print(json.dumps({"run": "half_rate", "workers": workers, **lat}), flush=True)
        rejected = topic_count(settings, invalid_topic)
        result["events_invalid"] = rejected
        return result
    finally:
        svc.stop(timeout=30)


# --- where a request's CPU goes (in-process, one thread, no HTTP) ----------------------------

def in_process_request(settings: Settings, topic: str, invalid_topic: str, n: int = 400) -> float:
    """CPU microseconds of this process per request through the real Flask app (test
    client: no HTTP server, one request at a time), Kafka producer threads included."""
    app = create_app(settings.replace(kafka={"topic_events": topic, "topic_invalid": invalid_topic},
                                      collector={"rate_limit_ip": "off", "rate_limit_site": "off"}))
    client = app.test_client()
    headers = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": USER_AGENT}
    bodies = [json.dumps({"site": SITE, "events": ev}, separators=(",", ":")).encode()
              for _, ev in make_batches(n + 50, seed=4)]
    for body in bodies[:50]:  # the producer, the Cassandra session, caches
        assert client.post("/api/collect", data=body, headers=headers).status_code == 202
    c0 = time.process_time()
    for body in bodies[50:]:
        client.post("/api/collect", data=body, headers=headers)
    used = time.process_time() - c0
    res = app.extensions["parallax.collector"]
    res.close()
    return round(used / n * 1e6)


def step_costs(settings: Settings, n: int = 400) -> dict[str, float]:
    """CPU microseconds per 20-event request of each step the collector runs, timed
    in this process on prebuilt bodies (no HTTP, no Kafka round trip)."""
    bodies = [json.dumps({"site": SITE, "events": ev}, separators=(",", ":")).encode()
              for _, ev in make_batches(n, seed=3)]
    client = describe_client("127.0.0.1", USER_AGENT, None)
    received = int(time.time() * 1000)
    ctx = events.Context(site=SITE, received_at=received, salt=b"s" * 32, ip="127.0.0.1", user_agent=USER_AGENT,
                           client=client, max_skew_ms=600_000, late_after_ms=600_000)
    parsed = [events.parse(b, 100) for b in bodies]

    def per_request(fn) -> float:
        fn(0)  # warm
        c0 = time.process_time()
        for i in range(n):
            fn(i)
        return round((time.process_time() - c0) / n * 1e6)

    processed = [events.process(b.events, ctx) for b in parsed]
    return {
        "parse (json.loads)": per_request(lambda i: events.parse(bodies[i], 100)),
        "validate (JSON Schema + string rules)": per_request(lambda i: [events.validate(e) for e in parsed[i].events]),
        "  of which JSON Schema (compiled: fastjsonschema)": per_request(
            lambda i: [events._schema_errors(e) for e in parsed[i].events]),
        "  the same with jsonschema (what an invalid event pays to have its errors worded)": per_request(
            lambda i: [list(events._validators[2].iter_errors(e)) for e in parsed[i].events]),
        "enrich + filter": per_request(lambda i: [events.filter_event(events.enrich(
            e, SITE, salt=ctx.salt, ip=ctx.ip, user_agent=ctx.user_agent, received_at=received, client=client), ctx)
            for e in parsed[i].events]),
        "serialize 20 records (msgspec)": per_request(lambda i: [to_json(e) for e in processed[i].accepted]),
    }


# --- the report -----------------------------------------------------------------------------

def versions(settings: Settings) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("gunicorn", "flask", "confluent-kafka", "kafka-python", "fastjsonschema", "jsonschema", "msgspec"):
        out[dist] = version(dist)
    out["librdkafka"] = libversion()[0]
    out["kafka"], out["cassandra"] = settings.kafka.version, settings.cassandra.version
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4], help="collector worker counts to run")
    parser.add_argument("--duration", type=float, default=30.0, help="timed seconds of the saturation run")
    parser.add_argument("--latency-duration", type=float, default=30.0, help="timed seconds of the half-rate run")
    parser.add_argument("--warmup", type=float, default=5.0, help="untimed seconds before each timed window")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (saturation run)")
    parser.add_argument("--reconnect-every", type=int, default=100,
                        help="requests per keep-alive connection before the generator opens a new one")
    parser.add_argument("--bare-events", type=int, default=400_000, help="events the bare producers send")
    parser.add_argument("--bare-procs", type=int, nargs="+", default=[1, 2],
                        help="bare producer runs: how many producer processes in each (the ratio is to the first)")
    parser.add_argument("--bare-confluent-procs", type=int, nargs="*", default=[1],
                        help="the same with the collector's own producer (confluent-kafka), for comparison")
    parser.add_argument("--max-rps", type=float, default=1000.0,
                        help="requests/s the saturation run's prebuilt pool is sized for (beyond it, ids are "
                             "restamped)")
    args = parser.parse_args()

    settings = load_settings()
    session = cassandra_session(settings, settings.cassandra.keyspace)
    Registry(session, settings.cassandra.keyspace).add_site(SITE, [DOMAIN], "UTC")
    session.cluster.shutdown()
    run_id = uuid.uuid4().hex[:8]
    topic, invalid_topic, bare_topic = (f"bench.collector.{run_id}", f"bench.collector.{run_id}.invalid",
                                        f"bench.collector.{run_id}.bare")
    config = {"min.insync.replicas": "1"}
    create_topics(settings, {topic: {"partitions": 3, "config": config},
                             bare_topic: {"partitions": 3, "config": config}, invalid_topic: {"partitions": 1}})
    services = service_processes(settings)
    command = " ".join([".venv/bin/python", "-m", "bench.collector_bench", *sys.argv[1:]])
    results: dict[str, Any] = {"command": command, "date": date.today().isoformat(), "topic": topic}
    try:
        results["steps_us_per_request"] = steps = step_costs(settings)
        steps["whole request through the Flask app, in-process (one at a time, Kafka threads included)"] = \
            in_process_request(settings, topic, invalid_topic)
        print(json.dumps({"run": "steps", "us_per_request": steps}), flush=True)
        results["bare"] = [run_bare(settings, bare_topic, args.bare_events, k, services) for k in args.bare_procs]
        results["bare_confluent"] = [run_bare(settings, bare_topic, args.bare_events, k, services, "confluent-kafka")
                                     for k in args.bare_confluent_procs]
        results["collector"] = [bench_collector(settings, args, w, topic, invalid_topic, services)
                                for w in args.workers]
    finally:
        delete_topics(settings, [topic, invalid_topic, bare_topic])
    mem = psutil.virtual_memory().total / 2**30
    results["machine"] = {"cores": os.cpu_count(), "memory_gib": round(mem, 1), "platform": platform.platform()}
    results["versions"] = versions(settings)
    print(json.dumps({"run": "summary", **results}), flush=True)
    report(results)


def report(results: dict[str, Any]) -> None:
    """Markdown tables for BENCHMARKS.md."""
    bare = results["bare"][0]
    print(f"\nmachine: {machine()}; "
          + ", ".join(f"{k} {v}" for k, v in results["versions"].items()))
    print(f"command: {results['command']}\n")
    print("| collector | events/s accepted (saturated) | requests/s | p50 / p99 saturated | "
          "half rate: events/s sent | p50 / p99 at half rate | collector / bare kafka-python producer | "
          "Kafka count = accepted |")
    print("|---|---:|---:|---:|---:|---:|---:|:---:|")
    for r in results["collector"]:
        s, h = r["saturation"], r["half_rate"]
        ok = s["nothing_missing"] and h["nothing_missing"] and not s["errors"] and not h["errors"]
        print(f"| {r['workers']} workers x {r['threads']} threads | {s['events_per_s']:,} | {s['requests_per_s']:,} | "
              f"{s['p50_ms']} / {s['p99_ms']} ms | {h['events_per_s']:,} | {h['p50_ms']} / {h['p99_ms']} ms | "
              f"{s['events_per_s'] / bare['events_per_s']:.2f} | {'yes' if ok else 'NO'} |")
    print("\n| bare producer | events/s | producer CPU per event | Kafka count = sent |")
    print("|---|---:|---:|:---:|")
    for b in results["bare"] + results["bare_confluent"]:
        print(f"| {b['client']}, {b['producers']} process{'es' if b['producers'] > 1 else ''} | "
              f"{b['events_per_s']:,} | "
              f"{b['producer_cpu_us_per_event']} µs | {'yes' if b['nothing_missing'] else 'NO'} |")
    print(f"\nCPU in the timed window (cores used on average, of {os.cpu_count()}):\n")
    print("| run | collector / producer | load generator | Kafka | Cassandra | other | machine busy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results["collector"]:
        for name in ("saturation", "half_rate"):
            c = r[name]["cores"]
            print(f"| collector, {r['workers']} workers, {name.replace('_', ' ')} | {c['collector']} | "
                  f"{c['load_generator']} | {c['kafka']} | {c['cassandra']} | {c['other']} | {c['machine_busy']} |")
    for b in results["bare"] + results["bare_confluent"]:
        c = b["cores"]
        print(f"| bare {b['client']} producer, {b['producers']} process(es) | {c['bare_producer']} | - | "
              f"{c['kafka']} | "
              f"{c['cassandra']} | {c['other']} | {c['machine_busy']} |")
    print("\nCPU per 20-event request (µs):\n")
    print("| what | µs |\n|---|---:|")
    for k, v in results["steps_us_per_request"].items():
        print(f"| {k.strip()} | {v} |")
    print(f"| kafka-python sending 20 records (bare producer's CPU per event x 20) | "
          f"{bare['producer_cpu_us_per_event'] * BATCH:.0f} |")
    for b in results["bare_confluent"][:1]:
        print(f"| the collector's producer (confluent-kafka) sending 20 records (its bare CPU per event x 20) | "
              f"{b['producer_cpu_us_per_event'] * BATCH:.0f} |")
    for r in results["collector"]:
        s = r["saturation"]
        if s["requests_per_s"]:
            per = s["cores"]["collector"] * 1e6 / s["requests_per_s"]
            print(f"| whole request in the collector under gunicorn, {r['workers']} workers (its CPU / requests) "
                  f"| {per:.0f} |")


if __name__ == "__main__":
    main()

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

The bare producer is kafka-python, as the issue asks (``infra.clients.kafka_producer`` with
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
import math
import multiprocessing as mp
import os
import platform
import random
import selectors
import signal
import socket
import sys
import time
import urllib.request
import uuid
from array import array
from collections import Counter, deque
from collections.abc import Iterator
from datetime import date
from typing import Any

SITE = "bench-collector"
DOMAIN = "bench.test"
BATCH = 20
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
PATHS = ("/", "/pricing", "/blog", "/blog/launch", "/docs", "/docs/install", "/signup", "/about")
REFERRERS = (None, None, "https://www.google.com/", "https://news.ycombinator.com/", "https://bench.test/")
VISITORS = 20_000
THREADS = 12  # what `parallax collect` gives each worker (infra/cli.py)
ID_MARK = b'"event_id":"'


# --- the events ---------------------------------------------------------------------------

def make_event(rng: random.Random, event_id: str, ts: int, visitor: str) -> dict[str, Any]:
    """One tracker event: mostly pageviews, some clicks and custom events with properties,
    a UTM tag on one in six, an explicit visitor id (as `parallax generate` sends)."""
    path = PATHS[rng.randrange(len(PATHS))]
    url = f"https://{DOMAIN}{path}" + ("?utm_source=news&utm_medium=email" if rng.random() < 1 / 6 else "")
    event: dict[str, Any] = {"event_id": event_id, "type": "pageview", "ts": ts, "url": url,
                             "referrer": REFERRERS[rng.randrange(len(REFERRERS))], "visitor_id": visitor,
                             "schema_version": 2}
    roll = rng.random()
    if roll < 0.2:
        event.update(type="click", props={"element": f"cta-{rng.randrange(4)}"})
    elif roll < 0.3:
        event.update(type="custom", name="signup", props={"plan": "pro", "seats": rng.randrange(1, 20)})
    return event


def event_ids(n: int) -> list[str]:
    """``n`` random version-4 UUIDs, made in bulk (faster than uuid.uuid4 one at a time)."""
    raw = os.urandom(16 * n).hex()
    out = []
    for i in range(n):
        h = raw[32 * i:32 * i + 32]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}")
    return out


def make_batches(n: int, seed: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``n`` requests' worth of events: (visitor, 20 events of that visitor), events dated
    within the last minute."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    for start in range(0, n, 1000):
        ids = iter(event_ids(min(1000, n - start) * BATCH))
        for _ in range(min(1000, n - start)):
            visitor = f"v{rng.randrange(VISITORS)}"
            yield visitor, [make_event(rng, next(ids), now - rng.randrange(60_000), visitor) for _ in range(BATCH)]


def request_bytes(port: int, body: bytes) -> bytes:
    """The whole HTTP request, as the tracker posts it (text/plain, a browser's User-Agent)."""
    head = (f"POST /api/collect HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


# --- the load generator (one process) -------------------------------------------------------

class Requests:
    """Prebuilt requests, each with fresh event ids. Past the pool, a request is the pool's
    with the first 8 hex digits of every event id replaced by the pass number (still unique,
    still a UUID): a few microseconds, and counted in ``wraps``."""

    def __init__(self, port: int, n: int, seed: int) -> None:
        self.pool = [request_bytes(port, json.dumps({"site": SITE, "events": events}, separators=(",", ":")).encode())
                     for _, events in make_batches(n, seed)]
        self.offsets = [[i + len(ID_MARK) for i in _find_all(r, ID_MARK)] for r in self.pool]
        self.next = 0
        self.wraps = 0

    def take(self) -> bytes:
        passes, i = divmod(self.next, len(self.pool))
        self.next += 1
        if not passes:
            return self.pool[i]
        self.wraps += 1
        req = bytearray(self.pool[i])
        stamp = b"%08x" % passes
        for off in self.offsets[i]:
            req[off:off + 8] = stamp
        return bytes(req)


def _find_all(data: bytes, mark: bytes) -> list[int]:
    found, i = [], data.find(mark)
    while i >= 0:
        found.append(i)
        i = data.find(mark, i + 1)
    return found


class Conn:
    __slots__ = ("sock", "out", "buf", "due", "busy", "served")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.out = memoryview(b"")
        self.buf = b""
        self.due = 0.0  # when the request in flight was due (closed loop: when it was sent)
        self.busy = False
        self.served = 0


def _response(buf: bytes) -> tuple[int, bytes, int] | None:
    """(status, body, bytes used) once ``buf`` holds a whole response, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].lower()
    i = head.find(b"\r\ncontent-length:")
    if i < 0:
        raise RuntimeError(f"response without Content-Length: {buf[:200]!r}")
    j = head.find(b"\r\n", i + 2)
    length = int(head[i + 17:j if j >= 0 else len(head)])
    if len(buf) < end + 4 + length:
        return None
    return int(buf[9:12]), buf[end + 4:end + 4 + length], end + 4 + length


def load(cfg: dict[str, Any], ready: Any, go: Any, start: Any, results: Any) -> None:
    """One load-generator process: build its requests, wait for the common start, run the
    closed or paced loop, put its counts and latencies on ``results``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the run
    mode, port = cfg["mode"], cfg["port"]
    reqs = Requests(port, cfg["pool"], cfg["seed"])
    conns: list[Conn] = []
    for _ in range(cfg["connections"]):  # one by one, so that the kernel spreads them over the workers
        conns.append(Conn(port))
        time.sleep(0.005)
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    ready.put(os.getpid())
    go.wait()
    t0 = start.value
    t_timed, t_end = t0 + cfg["warmup"], t0 + cfg["warmup"] + cfg["duration"]
    statuses: Counter = Counter()
    timed_statuses: Counter = Counter()
    accepted_all = accepted_timed = 0
    latencies = array("d")
    errors: list[str] = []
    sent = in_flight = 0
    idle: deque[Conn] = deque()
    backlog: deque[float] = deque()  # paced: requests due while every connection was busy
    interval = 1.0 / cfg["rate"] if mode == "paced" else 0.0
    next_due = t0
    opened = live = len(conns)  # connections opened in all; open now

    def send(c: Conn, due: float) -> None:
        nonlocal sent, in_flight
        c.due, c.busy = due, True
        data = reqs.take()
        n = c.sock.send(data)
        c.out = memoryview(data)[n:]
        if c.out:
            sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        sent += 1
        in_flight += 1

    def drop(c: Conn, why: str) -> None:
        nonlocal in_flight, live
        live -= 1
        if c.busy:
            in_flight -= 1
            errors.append(why)
        sel.unregister(c.sock)
        c.sock.close()
        if c in idle:
            idle.remove(c)

    while time.monotonic() < t0:
        time.sleep(0.0005)
    if mode == "closed":
        for c in conns:
            send(c, time.monotonic())
    else:
        idle.extend(conns)

    give_up = t_end + 30.0
    while True:
        now = time.monotonic()
        if mode == "paced":
            while next_due <= now and next_due < t_end:
                if idle:
                    send(idle.popleft(), next_due)
                elif live < cfg["max_connections"]:
                    c = Conn(port)
                    opened += 1
                    live += 1
                    sel.register(c.sock, selectors.EVENT_READ, c)
                    send(c, next_due)
                else:
                    backlog.append(next_due)
                next_due += interval
        sending_done = (now >= t_end) if mode == "closed" else (next_due >= t_end and not backlog)
        if sending_done and in_flight == 0:
            break
        if now > give_up:
            errors.append(f"{in_flight} request(s) unanswered 30 s after the end")
            break
        timeout = min(max(next_due - now, 0.0), 0.05) if mode == "paced" and next_due < t_end else 0.05
        for key, events in sel.select(timeout):
            c: Conn = key.data
            if events & selectors.EVENT_WRITE and c.out:
                n = c.sock.send(c.out)
                c.out = c.out[n:]
                if not c.out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if not events & selectors.EVENT_READ:
                continue
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                drop(c, f"connection error: {exc}")
                continue
            if not data:
                drop(c, "connection closed by the collector" + (" mid-request" if c.busy else ""))
                continue
            c.buf += data
            parsed = _response(c.buf)
            if parsed is None:
                continue
            status, body, used = parsed
            c.buf = c.buf[used:]
            done = time.monotonic()
            c.busy = False
            in_flight -= 1
            statuses[status] += 1
            got = json.loads(body).get("accepted", 0) if status == 202 else 0
            accepted_all += got
            # Closed loop: the answers that came back in the window. Paced: the requests due in it.
            timed = (t_timed <= done < t_end) if mode == "closed" else (t_timed <= c.due < t_end)
            if timed:
                timed_statuses[status] += 1
                accepted_timed += got
                latencies.append(done - c.due)
            if status != 202 and len(errors) < 5:
                errors.append(f"{status}: {body[:200]!r}")
            c.served += 1
            if c.served >= cfg["reconnect_every"] and (mode == "paced" or done < t_end):
                # A new connection goes to whichever collector worker accepts it first, as a
                # visitor's would: kept forever, connections opened while the collector idles
                # would all stay on the worker that happened to accept them.
                sel.unregister(c.sock)
                c.sock.close()
                c = Conn(port)
                opened += 1
                sel.register(c.sock, selectors.EVENT_READ, c)
            if mode == "closed":
                if done < t_end:
                    send(c, done)
            elif backlog:
                send(c, backlog.popleft())
            else:
                idle.append(c)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    cpu = os.times()
    results.put({"pid": os.getpid(), "sent": sent, "statuses": dict(statuses), "timed_statuses": dict(timed_statuses),
                 "accepted_all": accepted_all, "accepted_timed": accepted_timed, "latencies": latencies.tobytes(),
                 "errors": errors, "wraps": reqs.wraps, "connections": opened, "connections_at_end": live,
                 "cpu_s": cpu.user + cpu.system})


# --- CPU accounting -----------------------------------------------------------------------

def cpu_seconds(procs: list[Any]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # exited
            pass
    return total


def system_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    import psutil

    t = psutil.cpu_times()
    total = sum(t)
    return total - t.idle - getattr(t, "iowait", 0.0), total


class CpuWindow:
    """CPU seconds each group of processes (and the whole machine) used between two marks."""

    def __init__(self, groups: dict[str, list[Any]]) -> None:
        self.groups = groups
        self.start: dict[str, float] = {}

    def mark(self) -> None:
        self.t = time.monotonic()
        self.start = {name: cpu_seconds(ps) for name, ps in self.groups.items()}
        self.start["_busy"], self.start["_total"] = system_busy()

    def cores(self) -> dict[str, float]:
        """Cores used on average in the window, per group; 'other' is the rest of the machine."""
        wall = time.monotonic() - self.t
        used = {name: cpu_seconds(ps) - self.start[name] for name, ps in self.groups.items()}
        busy, _ = system_busy()
        machine = busy - self.start["_busy"]
        out = {name: round(s / wall, 2) for name, s in used.items()}
        # "worker:<pid>" groups are parts of another group (its processes one by one).
        counted = sum(s for name, s in used.items() if not name.startswith("worker:"))
        out["other"] = round(max(0.0, machine - counted) / wall, 2)
        out["machine_busy"] = round(machine / wall, 2)
        return out


# --- the runs -----------------------------------------------------------------------------

def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def run_load(mode: str, port: int, procs: int, connections: int, warmup: float, duration: float,
             rate_rps: float, groups: dict[str, list[Any]], seed: int, max_rps: float, reconnect_every: int,
             during: Any = None) -> dict[str, Any]:
    """Run the load generator's processes once; the CPU of every group in the timed window."""
    import psutil

    ctx = mp.get_context("spawn")
    ready, results, go, start = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    expected = (rate_rps if mode == "paced" else max_rps) * (warmup + duration + 1) / procs
    workers = []
    for i in range(procs):
        cfg = {"mode": mode, "port": port, "connections": max(1, connections // procs),
               "max_connections": 64, "rate": rate_rps / procs if rate_rps else 0.0,
               "warmup": warmup, "duration": duration, "reconnect_every": reconnect_every,
               "pool": int(min(expected, 60_000)) + 10,
               "seed": seed * 1000 + i}
        p = ctx.Process(target=load, args=(cfg, ready, go, start, results), daemon=True)
        p.start()
        workers.append(p)
    try:
        wait_ready(ready, workers)
        gen = [psutil.Process(p.pid) for p in workers]
        window = CpuWindow({"load_generator": gen, **groups})
        start.value = time.monotonic() + 0.2
        go.set()
        time.sleep(max(0.0, start.value + warmup - time.monotonic()))
        window.mark()
        if during is not None:
            time.sleep(duration / 2)
            during()
        time.sleep(max(0.0, start.value + warmup + duration - time.monotonic()))
        cores = window.cores()
        parts = [results.get(timeout=120) for _ in workers]
    finally:
        for p in workers:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    lat = sorted(x for part in parts for x in array("d", part["latencies"]))
    statuses: Counter = Counter()
    timed: Counter = Counter()
    for part in parts:
        statuses.update({int(k): v for k, v in part["statuses"].items()})
        timed.update({int(k): v for k, v in part["timed_statuses"].items()})
    accepted_timed = sum(p["accepted_timed"] for p in parts)
    return {
        "mode": mode, "seconds": duration, "target_requests_per_s": round(rate_rps) if rate_rps else None,
        "events_per_s": round(accepted_timed / duration),
        "requests_per_s": round(timed.get(202, 0) / duration),
        "p50_ms": round(pct(lat, 0.50) * 1000, 1), "p99_ms": round(pct(lat, 0.99) * 1000, 1),
        "max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "statuses": dict(statuses), "accepted_events_all": sum(p["accepted_all"] for p in parts),
        "connections_opened": sum(p["connections"] for p in parts),
        "connections_at_end": sum(p["connections_at_end"] for p in parts), "pool_wraps": sum(p["wraps"] for p in parts),
        "errors": [e for p in parts for e in p["errors"]][:10], "cores": cores,
    }


def wait_ready(ready: Any, workers: list[Any], timeout: float = 300.0) -> None:
    """Every process said it is ready; fail at once if one died first."""
    import queue

    deadline, waiting = time.monotonic() + timeout, len(workers)
    while waiting:
        try:
            ready.get(timeout=1)
            waiting -= 1
        except queue.Empty:
            dead = [p.exitcode for p in workers if p.exitcode is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"a benchmark process exited ({dead}) or did not get ready in time") from None


def topic_count(bootstrap: str, topic: str, partitions: int = 3) -> int:
    """Messages in ``topic`` so far: the sum of its partitions' end offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        return sum(consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)]).values())
    finally:
        consumer.close()


def scrape(url: str) -> dict[str, float]:
    """The collector's own counters, added up over its workers (GET /metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

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


def prewarm(url: str, gunicorn_workers: list[Any], settings: Any, timeout: float = 90.0) -> int:
    """Each worker makes its Kafka producer and Cassandra session at its first request (a
    second or two): bursts of concurrent requests on fresh connections, until every worker
    is connected to both, so that none pays for it in a timed window. Returns the requests sent."""
    from concurrent.futures import ThreadPoolExecutor

    wanted = {settings.kafka_host_port[1], settings.cassandra_port}

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


def service_pid(settings: Any, name: str) -> list[Any]:
    import psutil

    from infra.proc import read_pid

    pid = read_pid(settings.var_dir / "run" / f"{name}.pid")
    return [psutil.Process(pid)] if pid else []


def bench_collector(settings: Any, args: argparse.Namespace, workers: int, topic: str, invalid_topic: str,
                    services: dict[str, list[Any]]) -> dict[str, Any]:
    import psutil

    from infra.proc import CliProcess
    from tests.procs import free_port, wait_for

    port = free_port()
    env = {"PARALLAX_TOPIC_EVENTS": topic, "PARALLAX_TOPIC_INVALID": invalid_topic,
           "PARALLAX_RATE_LIMIT_IP": "off", "PARALLAX_RATE_LIMIT_SITE": "off"}
    log_path = settings.var_dir / "logs" / f"collector-bench-w{workers}.log"
    svc = CliProcess(f"collector (bench, {workers} workers)",
                     ["collect", "--port", str(port), "--workers", str(workers)], log_path, env=env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("the collector's /health", lambda: urllib.request.urlopen(f"{url}/health", timeout=5).status == 200,
                 timeout=90)
        master = psutil.Process(svc.proc.pid)
        wait_for(f"{workers} gunicorn workers", lambda: len(master.children()) == workers, timeout=60)
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
            after = topic_count(settings.kafka_bootstrap, topic)
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
        before, metrics_before = topic_count(settings.kafka_bootstrap, topic), scrape(url)
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
        rejected = topic_count(settings.kafka_bootstrap, invalid_topic, partitions=1)
        result["events_invalid"] = rejected
        return result
    finally:
        svc.stop(timeout=30)


def bare_producer(cfg: dict[str, Any], ready: Any, go: Any, start: Any, results: Any) -> None:
    """One process, one kafka-python producer with the collector's settings, sending the
    enriched events (serialized beforehand) one message per event, with the collector's
    keys, as fast as it can."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from collector.enrichment import describe_client
    from collector.pipeline import enrich, kafka_key
    from infra.clients import json_bytes, kafka_producer
    from infra.settings import load_settings

    settings = load_settings()
    client = describe_client("127.0.0.1", USER_AGENT, None)
    received = int(time.time() * 1000)
    payloads = [(kafka_key(SITE, visitor), json_bytes(enrich(e, SITE, salt=b"s" * 32, ip="127.0.0.1",
                                                             user_agent=USER_AGENT, received_at=received,
                                                             client=client)))
                for visitor, events in make_batches(cfg["pool"] // BATCH, seed=cfg["seed"]) for e in events]
    topic, n = cfg["topic"], cfg["events"]
    if cfg["client"] == "confluent-kafka":
        confluent_producer(cfg, payloads, ready, go, start, results)
        return
    producer = kafka_producer(settings, max_block_ms=5000, bootstrap_timeout_ms=5000, request_timeout_ms=5000,
                              delivery_timeout_ms=int(settings.kafka_ack_timeout_s * 1000))
    for p in range(3):  # metadata and a connection, untimed
        producer.send(topic, value=b"{}", partition=p).get(timeout=30)
    ready.put(os.getpid())
    go.wait()
    while time.monotonic() < start.value:
        time.sleep(0.0005)
    c0 = os.times()
    k, window, pending = len(payloads), cfg["window"], deque()
    for i in range(n):
        key, value = payloads[i % k]
        pending.append(producer.send(topic, key=key, value=value))
        # At most ``window`` records unacknowledged: beyond the producer's buffer, records
        # would wait longer than the delivery timeout and expire unsent. get() raises if
        # one failed: only acknowledged records are counted.
        if len(pending) > window:
            pending.popleft().get(timeout=60)
    producer.flush(timeout=120)
    for future in pending:
        future.get(timeout=60)
    done, c1 = time.monotonic(), os.times()
    producer.close(timeout=10)
    results.put({"events": n, "done": done, "cpu_s": c1.user + c1.system - c0.user - c0.system,
                 "payload_bytes": round(sum(len(v) for _, v in payloads) / k)})


def confluent_producer(cfg: dict[str, Any], payloads: list[tuple[bytes, bytes]], ready: Any, go: Any, start: Any,
                       results: Any) -> None:
    """The collector's own producer (``collector.kafka_sink``: librdkafka with its settings,
    the delivery-report thread) without HTTP or the pipeline: 20 records at a time, each
    batch's acknowledgements awaited as a request's are, at most ``window`` records unacknowledged."""
    from collector.kafka_sink import connect
    from infra.settings import load_settings

    sink = connect(load_settings())
    topic, n = cfg["topic"], cfg["events"]

    def acknowledged(acks: Any) -> None:
        if not acks.done.wait(60) or acks.error is not None:
            raise RuntimeError(f"not acknowledged: {acks.error}")

    for p in range(3):  # metadata and a connection, untimed
        acknowledged(sink.send([(topic, f"warm-up {p}".encode(), b"{}")]))
    ready.put(os.getpid())
    go.wait()
    while time.monotonic() < start.value:
        time.sleep(0.0005)
    c0 = os.times()
    k, pending = len(payloads), deque()
    for i in range(0, n, BATCH):
        pending.append(sink.send([(topic, *payloads[j % k]) for j in range(i, min(i + BATCH, n))]))
        if len(pending) * BATCH > cfg["window"]:
            acknowledged(pending.popleft())
    for acks in pending:
        acknowledged(acks)
    done, c1 = time.monotonic(), os.times()
    sink.retire()
    results.put({"events": n, "done": done, "cpu_s": c1.user + c1.system - c0.user - c0.system,
                 "payload_bytes": round(sum(len(v) for _, v in payloads) / k)})


def run_bare(settings: Any, topic: str, events: int, procs: int, services: dict[str, list[Any]],
             client: str = "kafka-python") -> dict[str, Any]:
    """``procs`` bare producers (one per process) sending ``events`` in all, started together."""
    import psutil

    ctx = mp.get_context("spawn")
    ready, results, go, start = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    before = topic_count(settings.kafka_bootstrap, topic)
    cfgs = [{"topic": topic, "events": events // procs, "pool": 20_000, "seed": 7 + i, "window": 5_000, "client": client}
            for i in range(procs)]
    workers = [ctx.Process(target=bare_producer, args=(cfg, ready, go, start, results), daemon=True) for cfg in cfgs]
    for p in workers:
        p.start()
    try:
        wait_ready(ready, workers)
        window = CpuWindow({"bare_producer": [psutil.Process(p.pid) for p in workers], **services})
        start.value = time.monotonic() + 0.2
        go.set()
        time.sleep(0.2)
        window.mark()
        parts = [results.get(timeout=600) for _ in workers]
        cores = window.cores()
    finally:
        for p in workers:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    sent = sum(p["events"] for p in parts)
    elapsed = max(p["done"] for p in parts) - start.value
    out = {"client": client, "producers": procs, "events": sent, "seconds": round(elapsed, 2), "events_per_s": round(sent / elapsed),
           "payload_bytes": parts[0]["payload_bytes"],
           "producer_cpu_us_per_event": round(sum(p["cpu_s"] for p in parts) / sent * 1e6, 1)}
    out["kafka_messages"] = topic_count(settings.kafka_bootstrap, topic) - before - 3 * procs  # less the warm-ups
    out["nothing_missing"] = out["kafka_messages"] == sent
    out["cores"] = cores
    print(json.dumps({"run": "bare_producer", **out}), flush=True)
    return out


# --- where a request's CPU goes (in-process, one thread, no HTTP) ----------------------------

def in_process_request(settings: Any, topic: str, invalid_topic: str, n: int = 400) -> float:
    """CPU microseconds of this process per request through the real Flask app (test
    client: no HTTP server, one request at a time), Kafka producer threads included."""
    from collector.app import create_app

    app = create_app(settings.with_overrides(topic_events=topic, topic_invalid=invalid_topic, rate_limit_ip="off",
                                             rate_limit_site="off"))
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
    res.registries()
    res._session.cluster.shutdown()
    return round(used / n * 1e6)


def step_costs(settings: Any, n: int = 400) -> dict[str, float]:
    """CPU microseconds per 20-event request of each step the collector runs, timed
    in this process on prebuilt bodies (no HTTP, no Kafka round trip)."""
    from collector import pipeline
    from collector.enrichment import describe_client
    from collector.kafka_sink import to_json

    bodies = [json.dumps({"site": SITE, "events": ev}, separators=(",", ":")).encode()
              for _, ev in make_batches(n, seed=3)]
    client = describe_client("127.0.0.1", USER_AGENT, None)
    received = int(time.time() * 1000)
    ctx = pipeline.Context(site=SITE, received_at=received, salt=b"s" * 32, ip="127.0.0.1", user_agent=USER_AGENT,
                           client=client, max_skew_ms=600_000, late_after_ms=600_000)
    parsed = [pipeline.parse(b, 100) for b in bodies]

    def per_request(fn) -> float:
        fn(0)  # warm
        c0 = time.process_time()
        for i in range(n):
            fn(i)
        return round((time.process_time() - c0) / n * 1e6)

    processed = [pipeline.process(b.events, ctx) for b in parsed]
    return {
        "parse (json.loads)": per_request(lambda i: pipeline.parse(bodies[i], 100)),
        "validate (JSON Schema + string rules)": per_request(lambda i: [pipeline.validate(e) for e in parsed[i].events]),
        "  of which JSON Schema (compiled: fastjsonschema)": per_request(
            lambda i: [pipeline._schema_errors(e) for e in parsed[i].events]),
        "  the same with jsonschema (what an invalid event pays to have its errors worded)": per_request(
            lambda i: [list(pipeline._validators[2].iter_errors(e)) for e in parsed[i].events]),
        "enrich + filter": per_request(lambda i: [pipeline.filter_event(pipeline.enrich(
            e, SITE, salt=ctx.salt, ip=ctx.ip, user_agent=ctx.user_agent, received_at=received, client=client), ctx)
            for e in parsed[i].events]),
        "serialize 20 records (msgspec)": per_request(lambda i: [to_json(e) for e in processed[i].accepted]),
    }


# --- the report -----------------------------------------------------------------------------

def versions(settings: Any) -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for dist in ("gunicorn", "flask", "confluent-kafka", "kafka-python", "fastjsonschema", "jsonschema", "msgspec"):
        out[dist] = version(dist)
    from confluent_kafka import libversion

    out["librdkafka"] = libversion()[0]
    out["kafka"], out["cassandra"] = settings.kafka_version, settings.cassandra_version
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
                        help="requests/s the saturation run's prebuilt pool is sized for (beyond it, ids are restamped)")
    args = parser.parse_args()

    import psutil
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from infra.clients import cassandra_session
    from infra.settings import load_settings
    from infra.sites import add_site

    settings = load_settings()
    session = cassandra_session(settings, settings.keyspace)
    add_site(session, settings.keyspace, SITE, [DOMAIN], "UTC")
    session.cluster.shutdown()
    run_id = uuid.uuid4().hex[:8]
    topic, invalid_topic, bare_topic = (f"bench.collector.{run_id}", f"bench.collector.{run_id}.invalid",
                                        f"bench.collector.{run_id}.bare")
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    config = {"min.insync.replicas": "1"}
    admin.create_topics([NewTopic(topic, 3, settings.replication_factor, topic_configs=config),
                         NewTopic(bare_topic, 3, settings.replication_factor, topic_configs=config),
                         NewTopic(invalid_topic, 1, settings.replication_factor)])
    services = {"kafka": service_pid(settings, "kafka"), "cassandra": service_pid(settings, "cassandra")}
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
        admin.delete_topics([topic, invalid_topic, bare_topic])
        admin.close()
    mem = psutil.virtual_memory().total / 2**30
    results["machine"] = {"cores": os.cpu_count(), "memory_gib": round(mem, 1), "platform": platform.platform()}
    results["versions"] = versions(settings)
    print(json.dumps({"run": "summary", **results}), flush=True)
    report(results, mem)


def report(results: dict[str, Any], mem: float) -> None:
    """Markdown tables for BENCHMARKS.md."""
    bare = results["bare"][0]
    print(f"\nmachine: {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}; "
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
        print(f"| {b['client']}, {b['producers']} process{'es' if b['producers'] > 1 else ''} | {b['events_per_s']:,} | "
              f"{b['producer_cpu_us_per_event']} µs | {'yes' if b['nothing_missing'] else 'NO'} |")
    print("\nCPU in the timed window (cores used on average, of %d):\n" % os.cpu_count())
    print("| run | collector / producer | load generator | Kafka | Cassandra | other | machine busy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results["collector"]:
        for name in ("saturation", "half_rate"):
            c = r[name]["cores"]
            print(f"| collector, {r['workers']} workers, {name.replace('_', ' ')} | {c['collector']} | "
                  f"{c['load_generator']} | {c['kafka']} | {c['cassandra']} | {c['other']} | {c['machine_busy']} |")
    for b in results["bare"] + results["bare_confluent"]:
        c = b["cores"]
        print(f"| bare {b['client']} producer, {b['producers']} process(es) | {c['bare_producer']} | - | {c['kafka']} | "
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

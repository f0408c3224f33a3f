"""The collector bench's load: tracker events in 20-event requests, sent by generator
processes over raw HTTP/1.1 keep-alive connections (one epoll loop each), closed loop
(saturation) or paced (latency without coordinated omission)."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import selectors
import signal
import socket
import time
from array import array
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import psutil

from bench.common import CpuWindow, pct, wait_ready
from tools.synthetic import tracker_event

SITE = "bench-collector"
DOMAIN = "bench.test"
BATCH = 20
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
PATHS = ("/", "/pricing", "/blog", "/blog/launch", "/docs", "/docs/install", "/signup", "/about")
REFERRERS = (None, None, "https://www.google.com/", "https://news.ycombinator.com/", "https://bench.test/")
VISITORS = 20_000
ID_MARK = b'"event_id":"'


# --- the events ---------------------------------------------------------------------------

def make_event(rng: random.Random, event_id: str, ts: int, visitor: str) -> dict[str, Any]:
    """One tracker event: mostly pageviews, some clicks and custom events with properties,
    a UTM tag on one in six, an explicit visitor id (as `parallax generate` sends)."""
    path = PATHS[rng.randrange(len(PATHS))]
    url = f"https://{DOMAIN}{path}" + ("?utm_source=news&utm_medium=email" if rng.random() < 1 / 6 else "")
    event = tracker_event(ts, url, event_id=event_id, referrer=REFERRERS[rng.randrange(len(REFERRERS))],
                          visitor_id=visitor, schema_version=2)
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


# --- a run of the generator processes -------------------------------------------------------

def run_load(mode: str, port: int, procs: int, connections: int, warmup: float, duration: float,
             rate_rps: float, groups: dict[str, list[Any]], seed: int, max_rps: float, reconnect_every: int,
             during: Any = None) -> dict[str, Any]:
    """Run the load generator's processes once; the CPU of every group in the timed window."""
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

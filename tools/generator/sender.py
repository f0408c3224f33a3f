"""The side effect: POST the model's requests to the collector, paced by their ``send_at``,
retried as the tracker retries, and every acknowledged event written to the truth."""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from tools.generator.model import Delivery
from tools.generator.truth import TruthWriter

log = logging.getLogger(__name__)

# As the tracker (collector/static/tracker.js): 429, 5xx and network failures are retried
# with exponential backoff from 2 s up to 5 minutes, honouring Retry-After, 10 times.
MAX_RETRIES = 10
MAX_BACKOFF_S = 300.0
RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Stats:
    """What happened, for the progress lines and the summary. Updated under ``lock``."""
    requests: int = 0  # POSTs answered (any status), retries included
    accepted: int = 0  # events acknowledged, copies included
    retries: int = 0
    refused: int = 0  # events of requests answered 4xx (other than 429) or rejected by schema
    given_up: int = 0  # events whose request failed MAX_RETRIES times, or was cut short by a stop
    statuses: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "accepted_copies": self.accepted, "retries": self.retries,
                    "refused_events": self.refused, "given_up_events": self.given_up,
                    "statuses": {str(k): v for k, v in sorted(self.statuses.items())}}


class Sender:
    """POSTs one delivery as the tracker would: a text/plain JSON body (a CORS "simple"
    request), the visitor's User-Agent, the page's Origin when the site admits it."""

    def __init__(self, collector_url: str, stats: Stats, stop: threading.Event,
                 origins: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        self.url = collector_url.rstrip("/") + "/api/collect"
        self.stats, self.stop, self.origins, self.timeout = stats, stop, origins or {}, timeout
        self._local = threading.local()  # one keep-alive session per worker thread
        self._warned: set[tuple[int, str]] = set()

    def _http(self) -> requests.Session:
        if not hasattr(self._local, "http"):
            self._local.http = requests.Session()
        return self._local.http

    def send(self, d: Delivery) -> list[int] | None:
        """The indices of the events the collector accepted, or None if it took none."""
        body = json.dumps({"site": d.site, "events": list(d.events)}, separators=(",", ":"))
        headers = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": d.user_agent}
        if d.site in self.origins:
            headers["Origin"] = self.origins[d.site]
        for attempt in range(MAX_RETRIES + 1):
            retry_after: float | None = None
            try:
                r = self._http().post(self.url, data=body.encode(), headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                self._warn(0, f"collector unreachable at {self.url}: {exc}")
                status = 0
            else:
                status = r.status_code
                with self.stats.lock:
                    self.stats.requests += 1
                    self.stats.statuses[status] += 1
                if status < 300:
                    return self._accepted(d, r)
                if status not in RETRY_STATUSES:
                    self._warn(status, r.text[:300])
                    self.stats.add(refused=len(d.events))
                    return None
                retry_after = _seconds(r.headers.get("Retry-After"))
            if attempt == MAX_RETRIES:
                break
            wait = retry_after if retry_after is not None else min(MAX_BACKOFF_S, 2.0 ** (attempt + 1))
            self.stats.add(retries=1)
            log.debug("status %s for %d events of %s; retrying in %.1fs", status, len(d.events), d.site, wait)
            if self.stop.wait(wait):
                break
        self.stats.add(given_up=len(d.events))
        return None

    def _accepted(self, d: Delivery, r: requests.Response) -> list[int]:
        try:
            rejected = {item["index"] for item in r.json().get("rejected", [])}
        except (ValueError, AttributeError, KeyError, TypeError):
            rejected = set()
        if rejected:
            self._warn(r.status_code, f"events rejected: {r.text[:300]}")
            self.stats.add(refused=len(rejected))
        return [i for i in range(len(d.events)) if i not in rejected]

    def _warn(self, status: int, message: str) -> None:
        """Log each kind of failure once (the progress lines count them)."""
        key = (status, message[:80])
        if key not in self._warned:
            self._warned.add(key)
            log.warning("collector answered %s: %s", status or "nothing", message)


def send_all(deliveries: Iterable[Delivery], sender: Sender, truth: TruthWriter, *, workers: int,
             deadline: float | None = None, clock: Callable[[], int] = now_ms,
             progress_every: float = 5.0) -> None:
    """Send each delivery no earlier than its ``send_at`` (the wall clock, epoch ms), on a
    pool of ``workers`` threads, until the deliveries run out, ``deadline``
    (time.monotonic()) passes or ``sender.stop`` is set; wait for those in flight."""
    stop = sender.stop
    slots = threading.BoundedSemaphore(workers * 2)  # a few queued per worker, no more
    progress = Progress(sender.stats, truth, progress_every, stop)
    progress.start()

    def job(d: Delivery) -> None:
        try:
            accepted = sender.send(d)
            if accepted:
                sender.stats.add(accepted=truth.accept(d, accepted, clock()))
                if d.repeat and not stop.is_set():  # the same events again: the layers drop the copy
                    again = sender.send(d)
                    if again:
                        sender.stats.add(accepted=truth.accept(d, again, clock()))
        except Exception:  # a bug must not silently stop a worker
            log.exception("sending %d events of %s failed", len(d.events), d.site)
        finally:
            slots.release()

    with ThreadPoolExecutor(workers, thread_name_prefix="generate") as pool:
        for d in deliveries:
            wait = (d.send_at - clock()) / 1000
            if deadline is not None and time.monotonic() + max(wait, 0) >= deadline:
                stop.wait(max(0.0, deadline - time.monotonic()))
                break
            if wait > 0 and stop.wait(wait):
                break
            while not slots.acquire(timeout=0.5):
                if stop.is_set():
                    break
            if stop.is_set():
                break
            pool.submit(job, d)
    progress.finish()


class Progress(threading.Thread):
    """Logs every few seconds: events acknowledged, the rate, retries and failures."""

    def __init__(self, stats: Stats, truth: TruthWriter, every: float, stop: threading.Event) -> None:
        super().__init__(name="generate-progress", daemon=True)
        self.stats, self.truth, self.every, self.stop = stats, truth, every, stop
        self._done = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        last_n, last_t = 0, self.started
        while not self._done.wait(self.every):
            self.truth.flush()
            s, t = self.stats.as_dict(), time.monotonic()
            log.info("sent %d events (%.0f/s now, %.0f/s overall), %d requests, %d retries, %d refused, "
                     "%d given up", s["accepted_copies"], (s["accepted_copies"] - last_n) / (t - last_t),
                     s["accepted_copies"] / (t - self.started), s["requests"], s["retries"], s["refused_events"],
                     s["given_up_events"])
            last_n, last_t = s["accepted_copies"], t

    def finish(self) -> None:
        self._done.set()
        self.join()


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff

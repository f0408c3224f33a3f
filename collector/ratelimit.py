"""Flood guards per client address (requests) and per site (events), with the `limits` library.

Moving windows: at most N in any window of the given length, so a sender cannot double its
rate across a window edge, and Retry-After is when the oldest hit leaves the window.

The counters live in each gunicorn worker's memory (limits' MemoryStorage). Workers do not
share them, so with W workers a sender gets between 1 and W times the limit through, as the
kernel spreads its connections. `limits` shares counters only through a server (Redis,
Memcached, MongoDB), which this project does not run; a limit here is a guard against
floods, not an exact quota. The address is a key in this memory only: it is never logged,
nor in an answer.
"""
from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)
_OFF = ("", "off", "none", "0")
_LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class Exceeded:
    """A limit that refused a request: which, how long to wait, and a message saying so."""
    scope: str  # "ip" or "site"
    retry_after: int  # seconds
    message: str


def parse_limit(text: str, setting: str) -> RateLimitItem | None:
    """A limit in `limits` notation ("600/minute", "10 per second"); None when disabled."""
    if text.strip().lower() in _OFF:
        return None
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"{setting}={text!r} is not a rate limit: write it like 600/minute or 50/second, "
                         f"or off") from None


def client_key(ip: str) -> str:
    """What one client is: its IPv4 address, or its IPv6 /64 (one host usually holds a whole
    /64, and could otherwise dodge the limit by moving through its addresses)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # a dual-stack socket's view of an IPv4 client
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return ip


def describe(item: RateLimitItem, unit: str) -> str:
    window = item.GRANULARITY.name if item.multiples == 1 else f"{item.multiples} {item.GRANULARITY.name}s"
    return f"{item.amount} {unit} per {window}"


class RateLimits:
    def __init__(self, per_ip: str, per_site: str) -> None:
        # Parsed now, so a bad setting stops the collector at start with a clear message.
        self.per_ip = parse_limit(per_ip, "PARALLAX_RATE_LIMIT_IP")
        self.per_site = parse_limit(per_site, "PARALLAX_RATE_LIMIT_SITE")
        self._limiter: MovingWindowRateLimiter | None = None
        self._lock = threading.Lock()
        self._last_log: dict[str, float] = {}
        self._refused: dict[str, int] = {}

    def _strategy(self) -> MovingWindowRateLimiter:
        # Created at first use, in the worker: MemoryStorage starts a timer thread, which a fork would not carry.
        with self._lock:
            if self._limiter is None:
                self._limiter = MovingWindowRateLimiter(MemoryStorage())
            return self._limiter

    def check_ip(self, ip: str) -> Exceeded | None:
        """One request from ``ip``; an Exceeded if that is one too many."""
        if self.per_ip is None:
            return None
        limiter, client = self._strategy(), client_key(ip)
        if limiter.hit(self.per_ip, "ip", client):
            return None
        wait = self._retry_after(limiter, self.per_ip, "ip", client)
        self._note("ip", "the per-address limit")
        return Exceeded("ip", wait, f"too many requests from your address: at most {describe(self.per_ip, 'requests')} "
                                    f"(counted by each collector process); retry in {wait} s")

    def check_site(self, site: str, events: int) -> Exceeded | None:
        """``events`` events for ``site``; an Exceeded if they would go over its limit."""
        if self.per_site is None or events == 0:
            return None
        limiter = self._strategy()
        # A batch larger than the whole limit could never pass: it waits for an empty window instead.
        if limiter.hit(self.per_site, "site", site, cost=min(events, self.per_site.amount)):
            return None
        wait = self._retry_after(limiter, self.per_site, "site", site)
        self._note("site", f"the per-site limit (the last for site {site!r})")
        return Exceeded("site", wait, f"too many events for site {site!r}: at most "
                                      f"{describe(self.per_site, 'events')} (counted by each collector process); "
                                      f"retry in {wait} s")

    @staticmethod
    def _retry_after(limiter: MovingWindowRateLimiter, item: RateLimitItem, *key: str) -> int:
        reset_at = limiter.get_window_stats(item, *key).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def _note(self, scope: str, what: str) -> None:
        """Tell the operator a limit is being hit, once a minute per scope, not once a request."""
        now = time.monotonic()
        with self._lock:
            self._refused[scope] = self._refused.get(scope, 0) + 1
            if now - self._last_log.get(scope, -_LOG_EVERY_S) < _LOG_EVERY_S:
                return
            refused, self._refused[scope], self._last_log[scope] = self._refused[scope], 0, now
        log.warning("rate limit: %d request(s) refused with 429 by %s in the last minute (this process)", refused, what)

"""Rate-limit counts that every serving process shares: a `limits` storage on Cassandra.

`limits` (behind Flask-Limiter) ships storages for Redis, Memcached and MongoDB, none of
which Parallax runs; counts in each process's memory would let N processes take N times a
limit. Here each hit is a row of ``rate_limit_hits`` living as long as the limit's window,
and a moving window counts the rows of its key. Two processes checking the same key at the
same instant may both pass where one should (no transaction): a limit may be exceeded by
the requests in flight at once, which is what a guard against guessing passwords can bear.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from cassandra import DriverException, OperationTimedOut, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from limits.storage import MovingWindowSupport, Storage

from store.cql import Tables

_COUNT = "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM {ks}.rate_limit_hits WHERE key = ? AND at > ?"
_HIT = "INSERT INTO {ks}.rate_limit_hits (key, at, id) VALUES (?, ?, ?) USING TTL ?"
_CLEAR = "DELETE FROM {ks}.rate_limit_hits WHERE key = ?"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RateLimitHits(Tables):
    """The hits of each limit key, one row each, expiring with the window."""

    def count(self, key: str, window_s: float) -> tuple[int, datetime | None]:
        """Hits of ``key`` in the last ``window_s`` seconds, and the oldest of them."""
        row = self.execute(_COUNT, (key, _now() - timedelta(seconds=window_s))).one()
        oldest = row.oldest.replace(tzinfo=timezone.utc) if row.oldest else None
        return int(row.n), oldest

    def hit(self, key: str, window_s: float, amount: int = 1) -> None:
        now = _now()
        for _ in range(amount):
            self.execute(_HIT, (key, now, uuid.uuid1(), max(1, int(window_s))))

    def clear(self, key: str) -> None:
        self.execute(_CLEAR, (key,))


class CassandraStorage(Storage, MovingWindowSupport):
    """``cassandra://`` for `limits` (moving windows only). Options: ``hits``, a function
    that returns the ``RateLimitHits`` (opened lazily, after the server forks)."""

    STORAGE_SCHEME = ["cassandra"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 hits: Callable[[], RateLimitHits] | None = None, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if hits is None:
            raise ValueError("the cassandra:// rate-limit storage needs the option hits=<callable>")
        self._hits = hits

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return NoHostAvailable, OperationTimedOut, RequestExecutionException

    # A moving window is all Parallax asks of it; the fixed-window calls answer from the same rows.
    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        count, _ = self._hits().count(key, expiry)
        if count + amount > limit:
            return False
        self._hits().hit(key, expiry, amount)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        count, oldest = self._hits().count(key, expiry)
        return (oldest.timestamp() if oldest else _now().timestamp()), count

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        self._hits().hit(key, expiry, amount)
        return self._hits().count(key, expiry)[0]

    def get(self, key: str) -> int:
        return self._hits().count(key, 86_400)[0]

    def get_expiry(self, key: str) -> float:
        return _now().timestamp()

    def check(self) -> bool:
        try:
            self._hits().count("check", 1)
            return True
        except (NoHostAvailable, OperationTimedOut, DriverException):
            return False

    def reset(self) -> int | None:
        return None  # keys are not enumerable here; each row expires with its window

    def clear(self, key: str) -> None:
        self._hits().clear(key)

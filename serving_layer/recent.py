"""Values read at most a few seconds ago, per key, in one serving process: what every
request asks and what changes seldom (a site's zone and batch state, who a token or a
session belongs to) is not read from Cassandra again for each request."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Recent:
    """Values read at most ``ttl_s`` ago (0: never kept), per key."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._values: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, read: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        value = read()
        if self.ttl_s > 0:
            with self._lock:
                if len(self._values) >= self.max_entries:
                    self._values.clear()
                self._values[key] = (now, value)
        return value

    def forget(self, key: Any = None) -> None:
        """Drop ``key``, or everything."""
        with self._lock:
            if key is None:
                self._values.clear()
            else:
                self._values.pop(key, None)

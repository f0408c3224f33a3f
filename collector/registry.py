"""Which sites exist, and today's visitor-id salt: read from Cassandra, cached briefly."""
from __future__ import annotations

import os
import threading
import time
from datetime import date, timedelta
from typing import Any


class SiteRegistry:
    """Registered sites, refreshed every ``ttl`` seconds so a new site is accepted quickly."""

    def __init__(self, session: Any, keyspace: str, ttl: float = 10.0) -> None:
        self.session, self.keyspace, self.ttl = session, keyspace, ttl
        self._sites: set[str] = set()
        self._loaded = 0.0
        self._lock = threading.Lock()

    def known(self, site: str) -> bool:
        with self._lock:
            if time.monotonic() - self._loaded > self.ttl or (site not in self._sites and time.monotonic() - self._loaded > 1):
                self._sites = {r.site for r in self.session.execute(f"SELECT site FROM {self.keyspace}.sites")}
                self._loaded = time.monotonic()
            return site in self._sites


class DailySalt:
    """One random salt per UTC day, shared by every collector process through Cassandra
    (the first writer wins, by a lightweight transaction); rows expire after two days."""

    def __init__(self, session: Any, keyspace: str) -> None:
        self.session, self.keyspace = session, keyspace
        self._cache: dict[date, bytes] = {}
        self._lock = threading.Lock()
        self._insert = session.prepare(
            f"INSERT INTO {keyspace}.visitor_salts (day, salt) VALUES (?, ?) IF NOT EXISTS USING TTL 172800"
        )
        self._select = session.prepare(f"SELECT salt FROM {keyspace}.visitor_salts WHERE day = ?")

    def for_day(self, day: date) -> bytes:
        with self._lock:
            if day not in self._cache:
                self.session.execute(self._insert, (day, os.urandom(32)))
                self._cache = {d: s for d, s in self._cache.items() if d >= day - timedelta(days=1)}
                self._cache[day] = self.session.execute(self._select, (day,)).one().salt
            return self._cache[day]

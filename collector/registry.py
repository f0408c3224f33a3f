"""Which sites exist (and their domains), and today's visitor-id salt: read from Cassandra, cached briefly."""
from __future__ import annotations

import os
import threading
import time
from datetime import date, timedelta
from typing import Any


class SiteRegistry:
    """Registered sites and their domains. A known site is cached for ``ttl`` seconds; an
    unknown one is looked up by key every time, so a site is accepted the moment it is
    registered (a change of a known site's domains applies within ``ttl``)."""

    def __init__(self, session: Any, keyspace: str, ttl: float = 60.0) -> None:
        self.session, self.ttl = session, ttl
        self._one = session.prepare(f"SELECT domains FROM {keyspace}.sites WHERE site = ?")
        self._known: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def domains(self, site: str) -> frozenset[str] | None:
        """The site's registered domains (lowercase, maybe with a port), or None if unknown."""
        with self._lock:
            seen = self._known.get(site)
        if seen is not None and time.monotonic() - seen[0] < self.ttl:
            return seen[1]
        row = self.session.execute(self._one, (site,)).one()
        found = None if row is None else frozenset(d.lower() for d in row.domains or ())
        with self._lock:
            if found is None:
                self._known.pop(site, None)
            else:
                self._known[site] = (time.monotonic(), found)
        return found

    def known(self, site: str) -> bool:
        return self.domains(site) is not None


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

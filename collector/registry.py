"""Which sites exist (and their domains), and today's visitor-id salt: read through
``store.registry``, cached briefly in each collector process."""
from __future__ import annotations

import os
import threading
import time
from datetime import date, timedelta

from store.registry import Registry, VisitorSalts


class SiteRegistry:
    """Registered sites and their domains. A known site is cached for ``ttl`` seconds; an
    unknown one is looked up by key every time, so a site is accepted the moment it is
    registered (a change of a known site's domains applies within ``ttl``)."""

    def __init__(self, registry: Registry, ttl: float = 60.0) -> None:
        self.registry, self.ttl = registry, ttl
        self._known: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def domains(self, site: str) -> frozenset[str] | None:
        """The site's registered domains (lowercase, maybe with a port), or None if unknown."""
        with self._lock:
            seen = self._known.get(site)
        if seen is not None and time.monotonic() - seen[0] < self.ttl:
            return seen[1]
        found = self.registry.site_domains(site)
        with self._lock:
            if found is None:
                self._known.pop(site, None)
            else:
                self._known[site] = (time.monotonic(), found)
        return found


class DailySalt:
    """One random salt per UTC day, shared by every collector process (``VisitorSalts``),
    kept in memory for today and yesterday."""

    def __init__(self, salts: VisitorSalts) -> None:
        self.salts = salts
        self._cache: dict[date, bytes] = {}
        self._lock = threading.Lock()

    def for_day(self, day: date) -> bytes:
        with self._lock:
            if day not in self._cache:
                salt = self.salts.claim(day, os.urandom(32))
                self._cache = {d: s for d, s in self._cache.items() if d >= day - timedelta(days=1)}
                self._cache[day] = salt
            return self._cache[day]

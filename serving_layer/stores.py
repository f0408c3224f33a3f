"""What the serving layer reads and writes, on one Cassandra session per process: view rows
and boundaries for the reports facade, the sites and their goals, the accounts, the
diagnostics."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from cassandra.cluster import Session

from infra.clients import cassandra_session
from infra.settings import Settings
from store.accounts import Accounts
from store.archive import Archive
from store.boundary import Boundaries
from store.diagnostics import Diagnostics
from store.ratelimits import RateLimitHits
from store.registry import Registry
from store.views import ViewReader, ViewRow
from views.catalogue import TRAFFIC_VIEW
from views.goals import Goal


class _Recent:
    """Values read at most ``ttl_s`` ago, per key: a site's zone and batch state, asked by
    every report, change once a day (a zone: almost never)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._values: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, read: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        value = read()
        with self._lock:
            if len(self._values) > 10_000:
                self._values.clear()
            self._values[key] = (now, value)
        return value


class ServingStore:
    """The reads of the reports and diagnostics routes (the reports facade's ``Sources``):
    the views, the registry and accounts in Cassandra; the master dataset on disk.

    A site's zone and batch state are read at most every ``meta_ttl_s`` seconds; accounts,
    sessions and tokens are read on every request (a revocation takes effect at once)."""

    def __init__(self, session: Session, keyspace: str, archive: Archive, max_archive_events: int,
                 meta_ttl_s: float = 2.0) -> None:
        self._recent = _Recent(meta_ttl_s)
        self.session = session
        self._views = ViewReader(session, keyspace)
        self._boundaries = Boundaries(session, keyspace)
        self.registry = Registry(session, keyspace)
        self.accounts = Accounts(session, keyspace)
        self.rate_limit_hits = RateLimitHits(session, keyspace)
        self.diagnostics = Diagnostics(session, keyspace)
        self.archive, self.max_archive_events = archive, max_archive_events

    def site_goals(self, site: str) -> tuple[Goal, ...]:
        return self.registry.site_goals(site)

    def site_zone(self, site: str) -> str | None:
        """The site's IANA time zone, or None if the site is not registered."""
        return self._recent.get(("zone", site), lambda: self.registry.site_zone(site))

    def boundary(self, site: str) -> datetime | None:
        return self.boundary_state(site)[0]

    def boundary_state(self, site: str) -> tuple[datetime | None, datetime | None]:
        """The site's boundary, and when a batch run last wrote its views."""
        return self._recent.get(("boundary", site), lambda: self._boundaries.state(site))

    def rows(self, table: str, site: str, granularity: str, start: datetime, end: datetime,
             view: str = TRAFFIC_VIEW) -> list[ViewRow]:
        return self._views.rows(table, site, granularity, start, end, view)

    def drift(self, site: str, day: date) -> list[dict[str, Any]]:
        return self.diagnostics.drift(site, day)

    def dropped_late(self, day: date) -> dict[str, int]:
        return self.diagnostics.dropped(day)


class LazyStore:
    """One ``ServingStore`` per process, opened on first use (not at import or fork)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._store: ServingStore | None = None

    def __call__(self) -> ServingStore:
        with self._lock:
            if self._store is None:
                s = self._settings
                keyspace = s.cassandra.keyspace
                archive = Archive(s.paths.master_dir, s.serving.archive_threads, s.serving.archive_memory)
                self._store = ServingStore(cassandra_session(s, keyspace), keyspace, archive,
                                           s.serving.archive_max_events, s.serving.meta_ttl_s)
            return self._store

    def close(self) -> None:
        """Shut the session down (its driver threads would otherwise keep reconnecting)."""
        with self._lock:
            if self._store is not None:
                self._store.session.cluster.shutdown()
                self._store.archive.close()
                self._store = None

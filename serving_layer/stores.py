"""What the serving layer reads and writes, on one Cassandra session per process: view rows
and boundaries for the reports facade, the sites and their goals, the accounts, the
diagnostics."""
from __future__ import annotations

import threading
from datetime import date, datetime
from typing import Any

from cassandra.cluster import Session

from infra.clients import cassandra_session
from infra.settings import Settings
from serving_layer.recent import Recent
from store.accounts import Accounts
from store.alerts import AlertRules
from store.archive import Archive
from store.boundary import Boundaries, BoundaryState
from store.diagnostics import Diagnostics
from store.erasures import Erasures
from store.incidents import Incidents
from store.late_events import LateDay, LateEvents
from store.notifications import Notifications
from store.ratelimits import RateLimitHits
from store.registry import Registry
from store.views import ViewReader, ViewRow
from views.catalogue import TRAFFIC_VIEW
from views.goals import Goal


class ServingStore:
    """The reads of the reports and diagnostics routes (the reports facade's ``Sources``):
    the views, the registry, accounts, alert rules and notifications in Cassandra; the
    master dataset on disk.

    A site's zone and batch state are read at most every ``meta_ttl_s`` seconds; accounts,
    sessions and tokens are read on every request (a revocation takes effect at once)."""

    def __init__(self, session: Session, keyspace: str, archive: Archive, max_archive_events: int,
                 meta_ttl_s: float = 2.0, archive_refresh_s: float = 300.0) -> None:
        self._recent = Recent(meta_ttl_s)
        self._archive_version = Recent(archive_refresh_s)
        self.session = session
        self._views = ViewReader(session, keyspace)
        self._boundaries = Boundaries(session, keyspace)
        self.registry = Registry(session, keyspace)
        self.accounts = Accounts(session, keyspace)
        self.rate_limit_hits = RateLimitHits(session, keyspace)
        self.diagnostics = Diagnostics(session, keyspace)
        self.late = LateEvents(session, keyspace)
        self.alerts = AlertRules(session, keyspace)
        self.notifications = Notifications(session, keyspace)
        self.incidents = Incidents(session, keyspace)
        self.erasures = Erasures(session, keyspace)
        self.archive, self.max_archive_events = archive, max_archive_events

    def archive_version(self) -> int:
        """The archive's last commit, looked at most every ``archive_refresh_s``: answers
        computed from it are that much behind it at most."""
        return self._archive_version.get("version", self.archive.version)

    def site_goals(self, site: str) -> tuple[Goal, ...]:
        return self.registry.site_goals(site)

    def site_zone(self, site: str) -> str | None:
        """The site's IANA time zone, or None if the site is not registered."""
        return self._recent.get(("zone", site), lambda: self.registry.site_zone(site))

    def boundary(self, site: str) -> datetime | None:
        return self.boundary_state(site).boundary

    def gaps(self, site: str) -> tuple[date, ...]:
        """The days since the site's first day that no batch run has computed although a
        later day was: not final, and the boundary cannot pass them."""
        return self.boundary_state(site).gaps

    def boundary_state(self, site: str) -> BoundaryState:
        """The site's boundary, when a batch run last wrote its views, and its gaps."""
        return self._recent.get(("boundary", site), lambda: self._boundaries.state(site))

    def rows(self, table: str, site: str, granularity: str, start: datetime, end: datetime,
             view: str = TRAFFIC_VIEW) -> list[ViewRow]:
        return self._views.rows(table, site, granularity, start, end, view)

    def drift(self, site: str, day: date) -> list[dict[str, Any]]:
        return self.diagnostics.drift(site, day)

    def late_events(self, site: str) -> list[LateDay]:
        return self.late.pending(site)

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
                archive = Archive(s.paths.master_dir, s.serving.archive_threads, s.serving.archive_memory,
                                  s.paths.var_dir / "serving" / "spill")
                self._store = ServingStore(cassandra_session(s, keyspace), keyspace, archive,
                                           s.serving.archive_max_events, s.serving.meta_ttl_s,
                                           s.serving.archive_refresh_s)
            return self._store

    def close(self) -> None:
        """Shut the session down (its driver threads would otherwise keep reconnecting)."""
        with self._lock:
            if self._store is not None:
                self._store.session.cluster.shutdown()
                self._store.archive.close()
                self._store = None

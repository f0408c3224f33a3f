"""A batch run replaces its site-days' rows wholesale: after its upserts, the rows of the
buckets it recomputed that it did not write again are removed.

Upserts alone never remove a row: when events leave the master dataset (an erasure), a
page only they visited, or an hour whose only session was theirs, would keep its old
values. What a run for day D of a site writes, and so replaces, in ``batch_views``:

- ``event`` columns of the buckets of D (the site's zone), every event view;
- ``session`` columns of the buckets of D - 1 and D (the sessions that started then), the
  traffic view and the session breakdowns.

A stored row in that range that the run did not write loses that kind's columns; a row
left with neither kind is deleted (the traffic rows hold both kinds, each written by its
own upsert; every other view holds one). The partitions to look in are those of the view
names the runs of the site-day wrote (``batch_view_names``, recorded by each run), of the
catalogue's views, and of the views this run wrote: a property view (``prop:<key>``) is the
only kind the catalogue does not name, and an erasure records the property views of the
events it removes before it removes them, so that a day computed before these records
existed loses them too.

Order, so that a crash at any point leaves the next run of the day able to finish: the new
rows are written; the view names they have are added to the record; the stale rows are
removed; the record is set to exactly the names written.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cassandra.cluster import Session

from store.replacement import BatchRows, RowKey, StoredRow, ViewNames, row_key
from store.views import ROW_KINDS
from views.catalogue import (
    BREAKDOWN_GRANULARITIES,
    DIMENSIONS,
    GRANULARITIES,
    SESSION_DIMENSIONS,
    TOTAL_DIM,
    TRAFFIC_VIEW,
    local_day_bounds,
)

log = logging.getLogger(__name__)

KINDS = tuple(ROW_KINDS)  # "event", "session"
# The views the catalogue says each kind of row is written for (goals, elements and
# properties: one view each, "goal", "element", "prop:<key>").
CATALOGUE_VIEWS = {
    "event": (TRAFFIC_VIEW, *(name for name, d in DIMENSIONS.items() if d.source == "event")),
    "session": (TRAFFIC_VIEW, *SESSION_DIMENSIONS),
}


@dataclass(frozen=True)
class Scope:
    """The ``kind`` columns a run writes for one site: every row with a bucket in [start, end)."""
    site: str
    kind: str
    start: datetime
    end: datetime

    def holds(self, bucket: datetime) -> bool:
        return self.start <= bucket < self.end


def scopes(day: date, site: str, tz: str) -> tuple[Scope, Scope]:
    """What a run for ``day`` replaces of ``site``: its event rows of the day, its session
    rows of the day before and the day."""
    start, end = local_day_bounds(day, tz)
    return Scope(site, "event", start, end), Scope(site, "session", local_day_bounds(day - timedelta(days=1), tz)[0],
                                                   end)


def view_key(row: Mapping, granularity: str) -> RowKey:
    """The key of a view frame's row (as ``store.views.view_params`` writes it)."""
    return row_key(row["site"], row.get("view_name", TRAFFIC_VIEW), granularity, row["bucket"],
                   row.get("dim", TOTAL_DIM))


def granularities(kind: str, view: str, written: Iterable[RowKey]) -> tuple[str, ...]:
    """Where rows of ``view`` may be: breakdowns of events at hours and days, the traffic
    view and the session views at every granularity; and wherever the run wrote it."""
    usual = GRANULARITIES if kind == "session" or view == TRAFFIC_VIEW else BREAKDOWN_GRANULARITIES
    seen = {k[2] for k in written if k[1] == view}
    return tuple(g for g in GRANULARITIES if g in usual or g in seen)


@dataclass
class Stale:
    """What to remove of one site's stored rows: whole rows, and one kind's columns of others."""
    rows: list[RowKey]
    columns: dict[str, list[RowKey]]

    @property
    def empty(self) -> bool:
        return not self.rows and not any(self.columns.values())


def stale(stored: Iterable[StoredRow], written: Mapping[str, set[RowKey]], site_scopes: Iterable[Scope]) -> Stale:
    """Of ``stored`` rows, what the run's writes (``written``: keys per kind) leave stale.

    A kind's columns are stale where the row's bucket is in that kind's scope and the run
    did not write that kind of the row. A row is removed whole when nothing of it would be
    left and the run wrote nothing of it (an empty row in the scope included); else only
    its stale kinds' columns are."""
    out = Stale([], {kind: [] for kind in KINDS})
    site_scopes = tuple(site_scopes)
    for row in stored:
        bucket = row.key[3]
        in_scope = {s.kind for s in site_scopes if s.holds(bucket)}
        if not in_scope:
            continue
        rewritten = {kind for kind in KINDS if row.key in written.get(kind, ())}
        stale_kinds = (row.kinds & in_scope) - rewritten
        if not row.kinds - stale_kinds and not rewritten:
            out.rows.append(row.key)
        else:
            for kind in sorted(stale_kinds):
                out.columns[kind].append(row.key)
    return out


def replace_rest(session: Session, keyspace: str, day: date, sites: Mapping[str, str],
                 written: Mapping[str, set[RowKey]], now: datetime) -> dict[str, Stale]:
    """After a run for ``day`` wrote the rows ``written`` (keys per kind) of ``sites``
    (site -> zone): remove the rows of those site-days it did not write (see the module's
    doc). Returns what was removed, per site."""
    t0 = time.perf_counter()
    names, rows = ViewNames(session, keyspace), BatchRows(session, keyspace)
    new_names = {(site, day, kind): {k[1] for k in written.get(kind, ()) if k[0] == site}
                 for site in sites for kind in KINDS}
    names.add(new_names, now)
    removed: dict[str, Stale] = {}
    for site, tz in sorted(sites.items()):
        recorded = names.read(site, day - timedelta(days=1), day)
        site_scopes = scopes(day, site, tz)
        found: dict[RowKey, StoredRow] = {}
        for scope in site_scopes:
            mine = {k for k in written.get(scope.kind, ()) if k[0] == site}
            views = set(CATALOGUE_VIEWS[scope.kind]) | new_names[(site, day, scope.kind)] | recorded.get(
                (day, scope.kind), frozenset())
            if scope.kind == "session":  # the run of the day before wrote sessions of that day too
                views |= recorded.get((day - timedelta(days=1), scope.kind), frozenset())
            wanted = [(view, g) for view in views for g in granularities(scope.kind, view, mine)]
            for row in rows.stored(site, wanted, scope.start, scope.end):
                found[row.key] = row
        removed[site] = result = stale(found.values(), written, site_scopes)
        if not result.empty:
            rows.remove(result.rows)
            for kind, keys in result.columns.items():
                rows.clear(kind, keys)
            log.info("%s, %s: %d batch view rows the run did not write again removed%s", site, day, len(result.rows),
                     "".join(f", {len(keys)} cleared of their {kind} measures" for kind, keys in result.columns.items()
                             if keys))
    names.put(new_names, now)
    log.info("%s: the rows of %d site(s) not written again looked for in %.1fs", day, len(sites),
             time.perf_counter() - t0)
    return removed

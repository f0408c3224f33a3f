"""The batch boundary (per site, the end of the last day whose batch views are complete, and
those of every day before it since the site's first day), the days batch runs computed, and
the record of batch runs."""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo

from store.cql import Tables, as_date, upsert
from views.catalogue import as_utc, local_day_bounds


class BoundaryState(NamedTuple):
    """A site's boundary, when a batch run last wrote its views, and its gaps: days since
    its first day that no batch run has computed although a later day was."""
    boundary: datetime | None
    last_run_at: datetime | None
    gaps: tuple[date, ...] = ()


def settled(first: date, computed: Collection[date]) -> tuple[date | None, tuple[date, ...]]:
    """The last day the boundary may pass -- the latest computed day D such that every day
    from ``first`` to D was computed too (days before ``first`` need nothing before them) --
    and the gaps: the days from ``first`` to the last computed day that were not computed."""
    days = set(computed)
    if not days:
        return None, ()
    last = max(days)
    span = (first + timedelta(days=n) for n in range((last - first).days + 1))
    gaps = tuple(d for d in span if d not in days)
    if not gaps:
        return last, ()
    return max((d for d in days if d < gaps[0]), default=None), gaps


def first_day(registered: date | None, events: Mapping[date, int]) -> date | None:
    """A site's first day: the earlier of its registration day and the first computed day
    with events (tests and backfills archive events dated before registration). Without
    either, the first computed day: nothing can be missing before it."""
    known = [d for d in (registered, min((d for d, n in events.items() if n), default=None)) if d is not None]
    return min(known) if known else min(events, default=None)


def day_spans(days: Iterable[date]) -> str:
    """Days as short text for a log: runs of consecutive days as ``first..last``."""
    spans: list[list[date]] = []
    for d in sorted(set(days)):
        if spans and d - spans[-1][1] == timedelta(days=1):
            spans[-1][1] = d
        else:
            spans.append([d, d])
    return ", ".join(str(a) if a == b else f"{a}..{b} ({(b - a).days + 1} days)" for a, b in spans)


class Boundaries(Tables):
    def all(self) -> dict[str, datetime]:
        """Every site's batch boundary (UTC)."""
        rows = self.execute("SELECT site, boundary FROM {ks}.batch_boundary")
        return {r.site: as_utc(r.boundary) for r in rows if r.boundary}

    def of(self, site: str) -> datetime | None:
        return self.state(site).boundary

    def state(self, site: str) -> BoundaryState:
        """The site's boundary, when a batch run last wrote its views, and its gaps (one row
        read: the boundary and its gaps are written together)."""
        row = self.execute("SELECT boundary, last_run_at, gaps FROM {ks}.batch_boundary WHERE site = ?",
                           (site,)).one()
        if row is None:
            return BoundaryState(None, None)
        return BoundaryState(as_utc(row.boundary) if row.boundary else None,
                             as_utc(row.last_run_at) if row.last_run_at else None,
                             tuple(sorted(as_date(d) for d in row.gaps or ())))

    def computed_days(self, site: str) -> dict[date, int]:
        """The days batch runs computed for the site, and the events each found."""
        rows = self.execute("SELECT day, events FROM {ks}.batch_days WHERE site = ?", (site,))
        return {as_date(r.day): int(r.events or 0) for r in rows}

    def move_forward(self, zones: Mapping[str, str], registered: Mapping[str, datetime | None]
                     ) -> dict[str, BoundaryState]:
        """Move each site's boundary (``zones``: site -> its zone) to the end of the last day
        that every day since its first was computed up to (its local midnight), and store its
        gaps. Never back: a re-run of an old day must not hide newer batch views, and a day
        computed after a gap does not move it (it jumps once the gap is computed).
        ``registered``: when each site was registered. Returns each site's boundary and gaps.

        The gaps are stored beside the boundary, not worked out by readers: a report reads
        both in the one row it reads already, and they change only here."""
        current = self.all()
        now = datetime.now(timezone.utc)
        out: dict[str, BoundaryState] = {}
        for site, tz in sorted(zones.items()):
            days = self.computed_days(site)
            created = registered.get(site)
            first = first_day(as_utc(created).astimezone(ZoneInfo(tz)).date() if created else None, days)
            through, gaps = settled(first, days) if first else (None, ())
            end = local_day_bounds(through, tz)[1] if through else None
            boundary = current.get(site)
            # One row update: a reader sees the new boundary with its gaps, or the old with theirs.
            if end is not None and (boundary is None or boundary < end):
                boundary = end
                upsert(self.session, self.statement(
                    "UPDATE {ks}.batch_boundary SET boundary = ?, gaps = ?, updated_at = ? WHERE site = ?"),
                    [(end, set(gaps), now, site)])
            else:
                upsert(self.session, self.statement("UPDATE {ks}.batch_boundary SET gaps = ? WHERE site = ?"),
                       [(set(gaps), site)])
            out[site] = BoundaryState(boundary, None, gaps)
        return out

    def record_run(self, day: date, counts: Mapping[str, tuple[int, int]], at: datetime,
                   archive_version: int | None = None) -> None:
        """One row per site of a batch run of ``day``: its events and duplicates; and the day
        among the site's computed days, with the master dataset's version the run read
        (what was committed after it is late data, ``batch_layer.late_data``)."""
        upsert(self.session, self.statement(
            "INSERT INTO {ks}.batch_runs (day, site, events, duplicates, finished_at) VALUES (?, ?, ?, ?, ?)"),
            [(day, site, events, duplicates, at) for site, (events, duplicates) in sorted(counts.items())])
        upsert(self.session, self.statement(
            "INSERT INTO {ks}.batch_days (site, day, events, finished_at, archive_version) VALUES (?, ?, ?, ?, ?)"),
            [(site, day, events, at, archive_version) for site, (events, _) in sorted(counts.items())])
        upsert(self.session, self.statement("UPDATE {ks}.batch_boundary SET last_run_at = ? WHERE site = ?"),
               [(at, site) for site in sorted(counts)])

    def backfill_days(self) -> int:
        """Once, when ``batch_days`` is new and empty: fill it from the runs recorded in
        ``batch_runs`` before it existed (else every site's earlier days would look like gaps
        and hold its boundary). Returns the rows written."""
        if self.execute("SELECT site FROM {ks}.batch_days LIMIT 1").one() is not None:
            return 0
        rows = [(r.site, as_date(r.day), r.events, r.finished_at)
                for r in self.execute("SELECT day, site, events, finished_at FROM {ks}.batch_runs")]
        return upsert(self.session, self.statement(
            "INSERT INTO {ks}.batch_days (site, day, events, finished_at) VALUES (?, ?, ?, ?)"), rows)

"""Late events: what the master dataset committed for a day after that day's batch run had
read it (``late_events``, per site, day and commit version), how far the late-data DAG has
read the table's log (``late_scan``), and each site's days with late events not yet taken
in by a run."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from store.cql import Tables, as_date, upsert
from views.catalogue import as_utc


@dataclass(frozen=True)
class DayRun:
    """A site-day's last batch run: the master dataset's version it read (None: a run from
    before versions were recorded) and when it finished."""
    version: int | None
    finished_at: datetime | None

    def missed(self, version: int, committed_at: datetime) -> bool:
        """Whether a commit came after what this run read."""
        if self.version is not None:
            return version > self.version
        return self.finished_at is None or committed_at > self.finished_at


@dataclass(frozen=True)
class LateDay:
    site: str
    day: date
    events: int
    newest_commit: datetime


class LateEvents(Tables):
    def runs(self, site: str | None = None) -> dict[tuple[str, date], DayRun]:
        """Each computed site-day's last run (one site's, or every site's)."""
        cql = "SELECT site, day, archive_version, finished_at FROM {ks}.batch_days"
        rows = self.execute(cql + " WHERE site = ?", (site,)) if site else self.execute(cql)
        return {(r.site, as_date(r.day)): DayRun(r.archive_version, as_utc(r.finished_at) if r.finished_at else None)
                for r in rows}

    def scanned(self, table: str) -> int | None:
        """The version of the master dataset at ``table`` (its path) read up to."""
        row = self.execute("SELECT version FROM {ks}.late_scan WHERE name = ?", (table,)).one()
        return row.version if row else None

    def record(self, table: str, found: Iterable[tuple[str, date, int, int, datetime]], scanned_to: int,
               at: datetime) -> None:
        """Late events found as (site, day, version, events, committed_at), then the version
        the log was read up to (a rerun over the same commits writes the same rows)."""
        upsert(self.session, self.statement(
            "INSERT INTO {ks}.late_events (site, day, version, events, committed_at) VALUES (?, ?, ?, ?, ?)"),
            list(found))
        self.execute("INSERT INTO {ks}.late_scan (name, version, scanned_at) VALUES (?, ?, ?)",
                     (table, scanned_to, at))

    def pending(self, site: str, runs: dict[tuple[str, date], DayRun] | None = None) -> list[LateDay]:
        """The site's days with events committed after their last run, oldest first."""
        runs = self.runs(site) if runs is None else runs
        by_day: dict[date, list[tuple[int, int, datetime]]] = {}
        for r in self.execute("SELECT day, version, events, committed_at FROM {ks}.late_events WHERE site = ?",
                              (site,)):
            by_day.setdefault(as_date(r.day), []).append((r.version, r.events or 0, as_utc(r.committed_at)))
        out = []
        for day, commits in sorted(by_day.items()):
            run = runs.get((site, day))
            missed = [(n, at) for v, n, at in commits if run is None or run.missed(v, at)]
            if missed and sum(n for n, _ in missed):
                out.append(LateDay(site, day, sum(n for n, _ in missed), max(at for _, at in missed)))
        return out

    def sites(self) -> list[str]:
        return sorted({r.site for r in self.execute("SELECT DISTINCT site FROM {ks}.late_events")})

"""Late data: events the master dataset committed for a day after that day's batch run read
it, found from the table's commit log -- not by listing its files.

Every batch run records the table version it read (``batch_days.archive_version``). The
hourly late-data DAG reads the commits since the last scan (``_delta_log/<version>.json``):
of the files those commits appended (the archive query's micro-batches, or an append by
hand; compactions and erasures add no new event), the ones whose event times (the file's
statistics) reach into a computed site-day are read, and their events counted per site and
local day. Counts are stored per commit (``store.late_events``), so a rescan writes the same
rows; a later run of the day reads a newer version and takes them in.

No Spark: the DAG's task reads the log and the few files with DuckDB.
"""
from __future__ import annotations

import json
import logging
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from infra import master
from store.late_events import DayRun, LateDay, LateEvents
from views.catalogue import local_day_bounds

log = logging.getLogger(__name__)
# The operations whose added files hold events new to the table.
APPENDS = ("STREAMING UPDATE", "WRITE")
QUARTER_MS = 900_000  # every zone's offset is a whole number of quarter hours
LONGEST_DAY = timedelta(hours=25)  # a local day, with a DST change


@dataclass(frozen=True)
class Appended:
    version: int
    committed_at: datetime
    path: Path
    first_event: datetime | None  # the file's statistics; None when it has none
    last_event: datetime | None


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def appended_files(master_dir: Path, first: int, last: int) -> list[Appended]:
    """The files commits ``first..last`` appended (one JSON file per commit in the log)."""
    out = []
    for version in range(first, last + 1):
        commit = master_dir / master.LOG_DIR / f"{version:020}.json"
        try:
            actions = [json.loads(line) for line in commit.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            log.warning("commit %d is no longer in the log (cleaned up): its late events cannot be counted", version)
            continue
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        if info.get("operation") not in APPENDS:
            continue
        at = datetime.fromtimestamp(info.get("timestamp", commit.stat().st_mtime * 1000) / 1000, timezone.utc)
        for action in actions:
            add = action.get("add")
            if not add or not add.get("dataChange", True):
                continue
            stats = json.loads(add.get("stats") or "{}")
            out.append(Appended(version, at, master_dir / add["path"],
                                _instant((stats.get("minValues") or {}).get("event_time")),
                                _instant((stats.get("maxValues") or {}).get("event_time"))))
    return out


def candidates(files: list[Appended], runs: dict[tuple[str, date], DayRun], zones: dict[str, str]
               ) -> list[Appended]:
    """The files that may hold events of a computed site-day its run did not read."""
    # Site-days by the start of their span: a file is checked only against those starting
    # within a local day's length (at most 25 h, with a DST change) before its first event.
    spans = sorted(((local_day_bounds(key[1], zones[key[0]]), key) for key in runs if key[0] in zones),
                   key=lambda span: span[0][0])
    starts = [start for (start, _), _ in spans]
    out = []
    for f in files:
        if f.first_event is None or f.last_event is None:  # no statistics: it may hold any day
            near = spans
        else:
            near = spans[bisect_left(starts, f.first_event - LONGEST_DAY):bisect_right(starts, f.last_event)]
        if any(runs[key].missed(f.version, f.committed_at) and
               (f.first_event is None or f.last_event is None or (f.first_event < end and f.last_event >= start))
               for (start, end), key in near):
            out.append(f)
    return out


def count_late(files: list[Appended], runs: dict[tuple[str, date], DayRun], zones: dict[str, str]
               ) -> list[tuple[str, date, int, int, datetime]]:
    """(site, day, version, events, committed_at) of the files' events that fall in a
    computed site-day whose run read an earlier version."""
    present = [f for f in files if f.path.exists()]
    if len(present) < len(files):
        log.warning("%d appended files are gone (compacted and vacuumed since): not counted", len(files) - len(present))
    if not present:
        return []
    by_path = {str(f.path): f for f in present}
    listed = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in by_path) + "]"
    sites = sorted({site for site, _ in runs})
    con = duckdb.connect(config={"threads": 2})
    try:
        rows = con.execute(f"SELECT site, filename, ts // {QUARTER_MS} AS q, count(*) FROM read_parquet({listed}, "
                           "filename = true, union_by_name = true) WHERE site IN (SELECT unnest(?)) GROUP BY ALL",
                           [sites]).fetchall()
    finally:
        con.close()
    counts: dict[tuple[str, date, int], int] = defaultdict(int)
    committed: dict[int, datetime] = {}
    for site, filename, quarter, n in rows:
        f = by_path[filename]
        day = datetime.fromtimestamp(quarter * QUARTER_MS / 1000, timezone.utc).astimezone(ZoneInfo(zones[site])).date()
        run = runs.get((site, day))
        if run is not None and run.missed(f.version, f.committed_at):
            counts[(site, day, f.version)] += n
            committed[f.version] = f.committed_at
    return [(site, day, version, n, committed[version]) for (site, day, version), n in sorted(counts.items())]


def scan(late: LateEvents, master_dir: Path, zones: dict[str, str], now: datetime) -> int:
    """Read the commits since the last scan and record their late events. Returns how many
    commits were read."""
    current = master.current_version(master_dir)
    if current is None:
        return 0
    runs = late.runs()
    done = late.scanned(str(master_dir))
    if done is None:  # the first scan: from the oldest version a recorded run read
        done = min((r.version for r in runs.values() if r.version is not None), default=current)
    if done >= current:
        log.info("master dataset at version %d: no commit since the last scan", current)
        return 0
    files = appended_files(master_dir, done + 1, current)
    chosen = candidates(files, runs, zones)
    found = count_late(chosen, runs, zones)
    late.record(str(master_dir), found, current, now)
    log.info("read commits %d..%d of the master dataset: %d appended files, %d reaching into computed days, "
             "%d late events in %d site-days", done + 1, current, len(files), len(chosen), sum(r[3] for r in found),
             len({(r[0], r[1]) for r in found}))
    return current - done


@dataclass(frozen=True)
class LatePlan:
    recompute: dict[date, list[str]]  # within the limit: recomputed now
    too_old: list[LateDay]  # counted and shown; a reprocess run takes them in


def plan(late: LateEvents, sites: list[str], today: date, limit_days: int) -> LatePlan:
    """Which site-days with late events the DAG recomputes: those up to ``limit_days`` old."""
    runs = late.runs()
    recompute: dict[date, list[str]] = defaultdict(list)
    too_old = []
    oldest = today - timedelta(days=limit_days)
    for site in sites:
        for day in late.pending(site, {k: v for k, v in runs.items() if k[0] == site}):
            if day.day >= oldest:
                recompute[day.day].append(site)
            else:
                too_old.append(day)
    return LatePlan(dict(sorted(recompute.items())), too_old)


def site_days_arg(days: dict[date, list[str]]) -> str:
    """The reprocess job's ``--site-days`` value: "2026-11-02:a,b;2026-11-03:c"."""
    return ";".join(f"{day.isoformat()}:{','.join(sorted(sites))}" for day, sites in sorted(days.items()))

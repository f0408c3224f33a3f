"""Answers the views cannot give, computed on demand from the master dataset (DuckDB over
its committed Parquet files): reports with several filters, and filtered breakdowns.

The views hold one dimension at a time, so a combination of conditions has no stored row;
the archive has every event. Only event measures are answered (sessions are the layers'
own), duplicates of an event are counted once (by ``event_id``), and unique visitors are
counted exactly. A query is bounded: it names its days' files only, and is refused before
it scans more than ``max_events`` events.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

from views.catalogue import GOAL_VIEW, MEASURES
from views.filters import Filter
from views.goals import Goal
from views.sql import EVENT_FIELDS, dimension_sql, measures_sql, where_sql

# The stored columns the archive counts, and the measures made of them alone.
COLUMNS = ("pageviews", "events", "visitors", "clicks", "impressions")
MEASURES_ANSWERED = frozenset(m for m, d in MEASURES.items() if set(d.columns) <= set(COLUMNS))


class OnDemandError(ValueError):
    """A question the archive will not answer as asked; the message says why."""


class ArchiveReader(Protocol):
    def committed_at(self) -> datetime | None: ...
    def files_of_days(self, first: date, last: date) -> list[Path]: ...
    def rows_in(self, files: Sequence[Path]) -> int: ...
    def query(self, files: Sequence[Path], sql: str, params: Sequence[object], fields: dict[str, str]
              ) -> list[tuple]: ...


@dataclass(frozen=True)
class Scope:
    """The events a question is about: a site's, in [start, end), that pass the filters."""
    site: str
    start: datetime
    end: datetime
    filters: tuple[Filter, ...]
    goals: tuple[Goal, ...]


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _files(archive: ArchiveReader, scope: Scope, max_events: int) -> list[Path]:
    first = scope.start.astimezone(timezone.utc).date()
    last = (scope.end - timedelta(microseconds=1)).astimezone(timezone.utc).date()
    files = archive.files_of_days(first, last)
    events = archive.rows_in(files)
    if events > max_events:
        raise OnDemandError(f"this question is computed from the archive and would read {events:,} events, more "
                            f"than the {max_events:,} a query may: shorten the range or use fewer filters")
    return files


def _events(scope: Scope, value: str | None = None) -> tuple[str, list[object]]:
    """The scope's events, each once (duplicates share their ``event_id``), with ``value``
    (a dimension's SQL) as a column if given."""
    where = where_sql(scope.filters, scope.goals)
    cols = "event_id, ts, type, visitor_id" + (f", {value} AS value" if value else "")
    return (f"SELECT DISTINCT ON (event_id) {cols} FROM {{events}} "
            f"WHERE site = ? AND ts >= ? AND ts < ? AND {where.text}",
            [scope.site, _ms(scope.start), _ms(scope.end), *where.params])


def _as_dict(row: Sequence[object], names: Sequence[str]) -> dict[str, int]:
    return {n: int(v or 0) for n, v in zip(names, row)}  # type: ignore[call-overload]


def bucket_counts(archive: ArchiveReader, scope: Scope, starts: Sequence[datetime], max_events: int
                  ) -> tuple[dict[datetime, dict[str, int]], dict[str, int]]:
    """The counts of each bucket (``starts``: the buckets' starts, from the catalogue) and
    of the whole range (its unique visitors exact over the range, not summed)."""
    files = _files(archive, scope, max_events)
    inner, params = _events(scope)
    by_ms = {_ms(s): s for s in starts}
    rows = archive.query(files, f"WITH b AS (SELECT unnest(?::BIGINT[]) AS start), ev AS ({inner}) "
                                f"SELECT b.start, {measures_sql(COLUMNS)} FROM ev ASOF JOIN b ON ev.ts >= b.start "
                                "GROUP BY b.start", [sorted(by_ms), *params], EVENT_FIELDS)
    buckets = {by_ms[r[0]]: _as_dict(r[1:], COLUMNS) for r in rows}
    total = archive.query(files, f"WITH ev AS ({inner}) SELECT {measures_sql(COLUMNS)} FROM ev", params,
                          EVENT_FIELDS)
    return buckets, _as_dict(total[0], COLUMNS) if total else dict.fromkeys(COLUMNS, 0)


def value_counts(archive: ArchiveReader, scope: Scope, dimension: str, max_events: int
                 ) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """The counts of each value of ``dimension``, and of all the scope's events (for a
    conversion rate); the value list is the goals an event converts, for goals."""
    files = _files(archive, scope, max_events)
    dim = dimension_sql(dimension, scope.goals)
    inner, params = _events(scope, dim.text)
    params = [*dim.params, *params]
    value = "unnest(value)" if dimension == GOAL_VIEW else "value"
    rows = archive.query(files, f"WITH ev AS ({inner}), v AS (SELECT {value} AS value, ts, type, visitor_id FROM ev) "
                                f"SELECT value, {measures_sql(COLUMNS)} FROM v WHERE value IS NOT NULL GROUP BY value",
                         params, EVENT_FIELDS)
    everyone = archive.query(files, f"WITH ev AS ({inner}) SELECT {measures_sql(COLUMNS)} FROM ev", params,
                             EVENT_FIELDS)
    return ({r[0]: _as_dict(r[1:], COLUMNS) for r in rows},
            _as_dict(everyone[0], COLUMNS) if everyone else dict.fromkeys(COLUMNS, 0))


def rest_counts(archive: ArchiveReader, scope: Scope, dimension: str, top: Sequence[str], max_events: int
                ) -> dict[str, int]:
    """The counts of every value of ``dimension`` but ``top``, together (their unique
    visitors exact, not summed): a breakdown's "(other)" row."""
    files = _files(archive, scope, max_events)
    dim = dimension_sql(dimension, scope.goals)
    inner, params = _events(scope, dim.text)
    value = "unnest(value)" if dimension == GOAL_VIEW else "value"
    rows = archive.query(files, f"WITH ev AS ({inner}), v AS (SELECT {value} AS value, ts, type, visitor_id FROM ev) "
                                f"SELECT {measures_sql(COLUMNS)} FROM v WHERE value IS NOT NULL "
                                "AND NOT list_contains(?::VARCHAR[], value)",
                         [*dim.params, *params, list(top)], EVENT_FIELDS)
    return _as_dict(rows[0], COLUMNS) if rows else dict.fromkeys(COLUMNS, 0)

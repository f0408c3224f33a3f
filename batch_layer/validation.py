"""Checks of a day's batch views before its boundary moves: a run whose views break one is
recorded as failed, and the boundary stays where it was (readers keep the speed views).

- no negative value in any measure;
- for every view row of the day, the hours' counts add up to the day's;
- unique visitors never exceed the events they come from;
- every site that had events in the day has its day's total row.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from views.catalogue import EVENT_COLUMNS, SESSION_COLUMNS, TOTAL_DIM, TRAFFIC_VIEW, as_utc

COUNTS = {"event": tuple(c for c in EVENT_COLUMNS if c not in ("visitors", "visitors_sketch")),
          "session": SESSION_COLUMNS}
# More problems than this are summarised: the first ones tell what went wrong.
MAX_LISTED = 20


class ValidationError(RuntimeError):
    pass


class DayValidator:
    """Fed the rows a run writes (``ViewWriter``'s ``on_rows``), then asked ``problems()``.
    ``zones``: site -> IANA zone, to put an hour in its local day."""

    def __init__(self, day: date, zones: Mapping[str, str]) -> None:
        self.day, self.zones = day, {site: ZoneInfo(tz) for site, tz in zones.items()}
        self._hours: dict[tuple, list[int]] = defaultdict(lambda: [0] * max(map(len, COUNTS.values())))
        self._days: dict[tuple, tuple[int, ...]] = {}
        self._problems: list[str] = []
        self._day_totals: set[str] = set()

    def _local_day(self, site: str, bucket: datetime) -> date:
        return as_utc(bucket).astimezone(self.zones[site]).date()

    def __call__(self, rows: Iterable[Mapping[str, Any]], granularity: str, kind: str) -> None:
        counts = COUNTS[kind]
        for row in rows:
            site = row["site"]
            values = [int(row[c] or 0) for c in counts]
            what = f"{site} {row.get('view_name', TRAFFIC_VIEW)}={row.get('dim', TOTAL_DIM)!r} {granularity} " \
                   f"{as_utc(row['bucket']).isoformat()}"
            if any(v < 0 for v in values) or (kind == "event" and int(row["visitors"] or 0) < 0):
                self._problems.append(f"{what}: a negative {kind} count")
            if kind == "event" and int(row["visitors"] or 0) > int(row["events"] or 0):
                self._problems.append(f"{what}: {row['visitors']} visitors from {row['events']} events")
            if site not in self.zones or granularity not in ("hour", "day"):
                continue
            key = (site, kind, row.get("view_name", TRAFFIC_VIEW), row.get("dim", TOTAL_DIM),
                   self._local_day(site, row["bucket"]))
            if granularity == "hour":
                sums = self._hours[key]
                for i, v in enumerate(values):
                    sums[i] += v
            else:
                self._days[key] = tuple(values)
                if kind == "event" and key[2] == TRAFFIC_VIEW and key[4] == self.day:
                    self._day_totals.add(site)

    def problems(self, sites_with_events: Iterable[str]) -> list[str]:
        out = list(self._problems)
        for key in sorted(set(self._hours) | set(self._days), key=str):
            site, kind, view, dim, day = key
            hours = tuple(self._hours.get(key, [0] * len(COUNTS[kind]))[:len(COUNTS[kind])])
            days = self._days.get(key, (0,) * len(COUNTS[kind]))
            if hours != days:
                names = COUNTS[kind]
                out.append(f"{site} {view}={dim!r} {day} {kind} counts: the hours add up to "
                           f"{dict(zip(names, hours))}, the day says {dict(zip(names, days))}")
        for site in sorted(set(sites_with_events) - self._day_totals):
            out.append(f"{site} had events on {self.day} but no day total row")
        return out

    def check(self, sites_with_events: Iterable[str]) -> None:
        """Raise ValidationError naming the problems, if any."""
        problems = self.problems(sites_with_events)
        if problems:
            more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
            raise ValidationError(f"{self.day}: the batch views fail validation, the boundary stays: "
                                  + "; ".join(problems[:MAX_LISTED]) + more)

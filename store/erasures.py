"""Erasure requests (``erasure_requests``): a data subject's visitor ids, who asked and when,
and what the erasure job did about them (``batch_layer/erase.py``): the site-days their
events were on, the events removed from the master dataset, the site-days recomputed.

A request is stored first (status ``pending``), from the API or the CLI; the DAG
``parallax_erasure`` takes it (``running``), and it ends ``done`` or ``failed``. Requests
are rare: listing them reads the table whole."""
from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from schemas import SITE_ID, event_schema
from store.cql import Tables, as_date, retrying
from views.catalogue import as_utc

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
STATUSES = (PENDING, RUNNING, DONE, FAILED)
# What a visitor id can be: the event schema's own rule (the collector's cookieless ids, 32
# hex digits, are such ids too).
VISITOR_ID = re.compile(event_schema()["properties"]["visitor_id"]["pattern"])
MAX_VISITOR_IDS = 1000
MAX_NOTE = 500
SiteDays = dict[str, tuple[date, ...]]


class ErasureError(ValueError):
    """A request that cannot be made (bad visitor ids, an unknown site)."""


def visitor_ids(values: Iterable[str]) -> tuple[str, ...]:
    """The request's visitor ids, checked, each once, sorted; ErasureError says what is wrong."""
    ids = sorted({v.strip() for v in values if v and v.strip()})
    if not ids:
        raise ErasureError("give at least one visitor id")
    bad = [v for v in ids if not VISITOR_ID.fullmatch(v)]
    if bad:
        shown = ", ".join(repr(v[:80]) for v in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise ErasureError(f"not a visitor id: {shown} (1-64 letters, digits, '_' or '-')")
    if len(ids) > MAX_VISITOR_IDS:
        raise ErasureError(f"{len(ids)} visitor ids; a request takes at most {MAX_VISITOR_IDS}")
    return tuple(ids)


def site_days_text(site_days: Mapping[str, Iterable[date]]) -> str:
    """Site-days as short text for a log or a terminal."""
    return "; ".join(f"{site}: {', '.join(str(d) for d in sorted(days))}" for site, days in sorted(site_days.items())
                     if days) or "none"


def merge_site_days(*parts: Mapping[str, Iterable[date]]) -> SiteDays:
    out: dict[str, set[date]] = {}
    for part in parts:
        for site, days in part.items():
            out.setdefault(site, set()).update(days)
    return {site: tuple(sorted(days)) for site, days in sorted(out.items()) if days}


def _days(value: Any) -> SiteDays:
    """A stored map<text, frozen<set<date>>> as {site: (day, ...)}."""
    return {site: tuple(sorted(as_date(d) for d in days))
            for site, days in (value or {}).items()}


def _stored(site_days: Mapping[str, Iterable[date]]) -> dict[str, set[date]]:
    return {site: set(days) for site, days in site_days.items() if days}


@dataclass(frozen=True)
class ErasureRequest:
    id: str
    requested_by: str
    requested_at: datetime
    visitor_ids: tuple[str, ...]
    site: str | None = None
    note: str = ""
    status: str = PENDING
    run_id: str | None = None
    attempts: int = 0
    started_at: datetime | None = None
    plan_version: int | None = None
    site_days: SiteDays = field(default_factory=dict)
    events_removed: int | None = None
    delete_version: int | None = None
    recomputed: SiteDays = field(default_factory=dict)
    waiting: SiteDays = field(default_factory=dict)
    finished_at: datetime | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The request as the API answers it."""
        def instant(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        def days(sd: SiteDays) -> dict[str, list[str]]:
            return {site: [d.isoformat() for d in ds] for site, ds in sd.items()}

        return {"id": self.id, "requested_by": self.requested_by, "requested_at": instant(self.requested_at),
                "visitor_ids": list(self.visitor_ids), "site": self.site, "note": self.note, "status": self.status,
                "run_id": self.run_id, "attempts": self.attempts, "started_at": instant(self.started_at),
                "site_days": days(self.site_days), "events_removed": self.events_removed,
                "delete_version": self.delete_version, "recomputed": days(self.recomputed),
                "waiting": days(self.waiting), "finished_at": instant(self.finished_at), "error": self.error}


COLUMNS = ("id", "requested_by", "requested_at", "visitor_ids", "site", "note", "status", "run_id", "attempts",
           "started_at", "plan_version", "site_days", "events_removed", "delete_version", "recomputed", "waiting",
           "finished_at", "error")
SELECT = f"SELECT {', '.join(COLUMNS)} FROM {{ks}}.erasure_requests"


def _request(row: Any) -> ErasureRequest:
    def instant(t: datetime | None) -> datetime | None:
        return as_utc(t) if t else None

    return ErasureRequest(
        row.id, row.requested_by or "", as_utc(row.requested_at), tuple(sorted(row.visitor_ids or ())), row.site,
        row.note or "", row.status or PENDING, row.run_id, row.attempts or 0, instant(row.started_at),
        row.plan_version, _days(row.site_days), row.events_removed, row.delete_version, _days(row.recomputed),
        _days(row.waiting), instant(row.finished_at), row.error)


class Erasures(Tables):
    """The requests, and each step of their erasure. Every write is retried while Cassandra
    is away (a job that erased events must get to record it)."""

    def _write(self, cql: str, params: tuple) -> None:
        retrying(lambda: self.execute(cql, params), "write of an erasure request")

    def request(self, ids: Iterable[str], requested_by: str, now: datetime, *, site: str | None = None,
                note: str = "", known_sites: Iterable[str] | None = None) -> ErasureRequest:
        """Record a request (pending); ErasureError if it cannot be made. ``known_sites``:
        the registered sites, which ``site`` must be one of."""
        checked = visitor_ids(ids)
        if site is not None:
            if not SITE_ID.fullmatch(site) or (known_sites is not None and site not in set(known_sites)):
                raise ErasureError(f"no such site: {site!r}")
        note = (note or "").strip()
        if len(note) > MAX_NOTE:
            raise ErasureError(f"the note is {len(note)} characters; at most {MAX_NOTE}")
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as Cassandra keeps it (milliseconds)
        request = ErasureRequest(secrets.token_hex(6), requested_by, now, checked, site, note)
        self._write("INSERT INTO {ks}.erasure_requests (id, requested_by, requested_at, visitor_ids, site, note, "
                    "status, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                    (request.id, requested_by, now, set(checked), site, note, PENDING))
        return request

    def get(self, request_id: str) -> ErasureRequest | None:
        row = self.execute(f"{SELECT} WHERE id = ?", (request_id,)).one()
        return _request(row) if row else None

    def all(self) -> list[ErasureRequest]:
        """Every request, newest first."""
        return sorted((_request(r) for r in self.execute(SELECT)), key=lambda r: (r.requested_at, r.id), reverse=True)

    def to_take(self) -> list[ErasureRequest]:
        """What a scheduled erasure run takes, oldest first: the pending requests, and those
        left running by a run that ended without finishing them (runs of the DAG never
        overlap). Failed ones wait for someone to retry them."""
        return sorted((r for r in self.all() if r.status in (PENDING, RUNNING)), key=lambda r: r.requested_at)

    def start(self, request_id: str, run_id: str, now: datetime) -> None:
        """The erasure job took the request (another attempt if it had one)."""
        current = self.get(request_id)
        attempts = (current.attempts if current else 0) + 1
        self._write("UPDATE {ks}.erasure_requests SET status = ?, run_id = ?, attempts = ?, started_at = ?, "
                    "error = null WHERE id = ?", (RUNNING, run_id, attempts, now, request_id))

    def planned(self, request_id: str, site_days: Mapping[str, Iterable[date]], plan_version: int) -> None:
        """Before a delete: the site-days the events are on (so a retry after a crash
        recomputes them though the events are gone) and the table version counted in."""
        self._write("UPDATE {ks}.erasure_requests SET site_days = ?, plan_version = ? WHERE id = ?",
                    (_stored(site_days), plan_version, request_id))

    def deleted(self, request_id: str, events_removed: int, delete_version: int | None) -> None:
        """After a delete: the events removed so far (every attempt), and its version."""
        self._write("UPDATE {ks}.erasure_requests SET events_removed = ?, delete_version = ?, plan_version = null "
                    "WHERE id = ?", (events_removed, delete_version, request_id))

    def finish(self, request_id: str, recomputed: Mapping[str, Iterable[date]],
               waiting: Mapping[str, Iterable[date]], now: datetime) -> None:
        self._write("UPDATE {ks}.erasure_requests SET status = ?, recomputed = ?, waiting = ?, finished_at = ? "
                    "WHERE id = ?", (DONE, _stored(recomputed), _stored(waiting), now, request_id))

    def fail(self, request_id: str, error: str, now: datetime) -> None:
        self._write("UPDATE {ks}.erasure_requests SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                    (FAILED, error[:2000], now, request_id))

    def retry(self, request_id: str) -> ErasureRequest:
        """A failed request back to pending (the next scheduled run takes it)."""
        current = self.get(request_id)
        if current is None:
            raise ErasureError(f"no erasure request {request_id!r}")
        if current.status == DONE:
            raise ErasureError(f"erasure request {request_id} is done: make a new request for events that came since")
        self._write("UPDATE {ks}.erasure_requests SET status = ?, error = null WHERE id = ?", (PENDING, request_id))
        return self.get(request_id)  # type: ignore[return-value]

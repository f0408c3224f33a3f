"""What the speed layer does with each micro-batch of closed sessions.

Spark's session windows only run in append mode on a stream: a session is emitted once,
when the watermark has passed its end. A minute bucket's session measures need every
session that started in it, and those close in different micro-batches. So each
micro-batch upserts its sessions into ``speed_sessions`` (keyed by where they start) and
recomputes the full session measures of the minutes they started in from every stored
session there, with the same ``views.transforms.session_views`` the batch layer runs.
Replaying a micro-batch writes the same rows again.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from views.catalogue import SPEED_GRANULARITY, bucket_start
from views.store import SPEED_TABLE, as_utc, retrying, upsert, upsert_cql, view_params, view_partition
from views.transforms import session_views

log = logging.getLogger(__name__)

SESSION_FIELDS = ("site", "visitor_id", "start", "end", "duration_ms", "pageviews", "events", "entry_page",
                  "exit_page")
SESSION_SCHEMA = ("site STRING, visitor_id STRING, start TIMESTAMP, end TIMESTAMP, duration_ms LONG, pageviews LONG, "
                  "events LONG, entry_page STRING, exit_page STRING")


def session_period(start: datetime) -> str:
    """The partition of a stored session: the UTC day it started."""
    return as_utc(start).strftime("%Y-%m-%d")


def touched_minutes(sessions: list[dict[str, Any]]) -> dict[tuple[str, str], set[datetime]]:
    """(site, period) -> the minute buckets where these sessions started."""
    out: dict[tuple[str, str], set[datetime]] = defaultdict(set)
    for s in sessions:
        out[(s["site"], session_period(s["start"]))].add(bucket_start(as_utc(s["start"]), "minute"))
    return out


class SpeedSessionSink:
    def __init__(self, session: Any, keyspace: str) -> None:
        self.session = session
        cols = ", ".join(("period",) + SESSION_FIELDS)
        self.insert = session.prepare(
            f"INSERT INTO {keyspace}.speed_sessions ({cols}) VALUES ({', '.join('?' for _ in cols.split(', '))})")
        self.select = session.prepare(
            f"SELECT {', '.join(SESSION_FIELDS)} FROM {keyspace}.speed_sessions "
            "WHERE site = ? AND period = ? AND start >= ? AND start < ?")
        self.upsert_views = session.prepare(upsert_cql(keyspace, SPEED_TABLE, "session"))

    def stored_sessions(self, minutes: dict[tuple[str, str], set[datetime]]) -> list[tuple]:
        """Every stored session that started in one of ``minutes``."""
        out = []
        for (site, period), starts in minutes.items():
            lo, hi = min(starts), max(starts) + timedelta(minutes=1)
            rows = retrying(lambda: list(self.session.execute(self.select, (site, period, lo, hi))),
                            "read of speed sessions", attempts=None)
            out += [tuple(as_utc(v) if isinstance(v, datetime) else v for v in r) for r in rows
                    if bucket_start(as_utc(r.start), "minute") in starts]
        return out

    def __call__(self, batch_df: Any, batch_id: int) -> None:
        closed = [r.asDict() for r in batch_df.select(*SESSION_FIELDS).collect()]
        if not closed:
            return
        upsert(self.session, self.insert,
               ((session_period(s["start"]), *(as_utc(s[f]) if f in ("start", "end") else s[f] for f in SESSION_FIELDS))
                for s in closed), attempts=None, partition_of=lambda row: row[:2])  # (period, site)
        minutes = touched_minutes(closed)
        stored = self.stored_sessions(minutes)
        frame = batch_df.sparkSession.createDataFrame(stored, SESSION_SCHEMA)
        rows = [r.asDict() for r in session_views(frame, SPEED_GRANULARITY).collect()]
        now = datetime.now(timezone.utc)
        written = upsert(self.session, self.upsert_views,
                         (view_params(r, SPEED_GRANULARITY, now, "session") for r in rows), attempts=None,
                         partition_of=view_partition)
        log.info("sessions micro-batch %d: %d sessions closed; %d minute buckets recomputed (%d rows)", batch_id,
                 len(closed), sum(len(m) for m in minutes.values()), written)

"""The view tables (``speed_views``, ``batch_views``) and the speed layer's running session
sums (``speed_session_sums``): one layout for both layers' writers and every reader.

Writes are upserts of a bucket's full value, never increments, so a replayed micro-batch or
a re-run batch job writes the same rows again.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.cql import Tables, retrying, upsert
from views.catalogue import EVENT_COLUMNS, SESSION_COLUMNS, TOTAL_DIM, TRAFFIC_VIEW, as_utc, period_key, periods_between

SPEED_TABLE = "speed_views"
BATCH_TABLE = "batch_views"
TABLES = (SPEED_TABLE, BATCH_TABLE)

KEY_COLUMNS = ("site", "view_name", "granularity", "period", "bucket", "dim")
# What each kind of view row writes (see views.catalogue): an event-views upsert and a
# session-views upsert of the same bucket fill different columns of one row.
ROW_KINDS = {"event": EVENT_COLUMNS, "session": SESSION_COLUMNS}
MEASURE_COLUMNS = EVENT_COLUMNS + SESSION_COLUMNS


def _check_table(table: str) -> None:
    if table not in TABLES:
        raise ValueError(f"unknown view table {table!r}")


def upsert_cql(keyspace: str, table: str, kind: str = "event") -> str:
    """The upsert of one view row's ``kind`` ("event" or "session") columns."""
    _check_table(table)
    cols = KEY_COLUMNS + ROW_KINDS[kind] + ("updated_at",)
    return f"INSERT INTO {keyspace}.{table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"


def select_cql(keyspace: str, table: str) -> str:
    _check_table(table)
    return (
        f"SELECT bucket, dim, {', '.join(MEASURE_COLUMNS)} FROM {keyspace}.{table} "
        "WHERE site = ? AND view_name = ? AND granularity = ? AND period = ? AND bucket >= ? AND bucket < ?"
    )


def view_partition(params: tuple) -> tuple:
    """The partition key of ``view_params``' output: site, view_name, granularity, period."""
    return params[:4]


def view_params(row: Mapping[str, Any], granularity: str, now: datetime, kind: str = "event") -> tuple:
    """A row of ``views.transforms.views`` (kind "event") or ``session_views`` ("session")
    -> the parameters of ``upsert_cql``."""
    bucket = as_utc(row["bucket"])
    values = []
    for col in ROW_KINDS[kind]:
        value = row[col]
        if col == "visitors_sketch":
            values.append(bytes(value) if value is not None else None)
        else:
            values.append(int(value))
    return (row["site"], row.get("view_name", TRAFFIC_VIEW), granularity, period_key(granularity, bucket), bucket,
            row.get("dim", TOTAL_DIM), *values, now)


class ViewWrites(Tables):
    """Upserts of view rows into either view table, a partition's rows in unlogged batches."""

    def prepare(self, table: str, kind: str) -> None:
        self.statement(upsert_cql("{ks}", table, kind))

    def write(self, table: str, kind: str, granularity: str, rows: Iterable[Mapping[str, Any]], now: datetime, *,
              attempts: int | None = 30, stop: threading.Event | None = None) -> int:
        """Upsert the ``kind`` columns of view ``rows`` of one granularity; returns how many.
        ``attempts=None`` retries for as long as Cassandra is away (or until ``stop`` is set)."""
        statement = self.statement(upsert_cql("{ks}", table, kind))
        return upsert(self.session, statement, (view_params(r, granularity, now, kind) for r in rows),
                      partition_of=view_partition, attempts=attempts, stop=stop)


@dataclass(frozen=True)
class ViewRow:
    """One stored view row; a measure the row's writers did not fill reads as 0."""

    bucket: datetime
    dim: str = TOTAL_DIM
    pageviews: int = 0
    events: int = 0
    visitors: int = 0
    visitors_sketch: bytes | None = None
    clicks: int = 0
    impressions: int = 0
    sessions: int = 0
    bounces: int = 0
    duration_ms: int = 0
    session_pageviews: int = 0


class ViewReader(Tables):
    """Reads view rows of a bucket range, partition by partition."""

    def rows(self, table: str, site: str, granularity: str, start: datetime, end: datetime,
             view: str = TRAFFIC_VIEW) -> list[ViewRow]:
        """Rows of ``view`` in ``table`` with buckets in [start, end): the site total, or
        one row per breakdown value and bucket."""
        if end <= start:
            return []
        out: list[ViewRow] = []
        for period in periods_between(granularity, start, end):
            for r in self.execute(select_cql("{ks}", table), (site, view, granularity, period, start, end)):
                values = {c: getattr(r, c) for c in MEASURE_COLUMNS}
                sketch = values.pop("visitors_sketch")
                out.append(ViewRow(as_utc(r.bucket), r.dim, visitors_sketch=sketch,
                                   **{c: v or 0 for c, v in values.items()}))
        return out


# The speed layer's running session measures per minute (see speed_layer.sessions).
SUMS_COLUMNS = ("site", "period", "bucket", "view_name", "dim", *SESSION_COLUMNS, "query_id", "through_batch")


class SessionSums(Tables):
    """``speed_session_sums``: per (site, minute, view, dim), the session measures the
    sessions query closed so far, with the micro-batch they include. Read and written for as
    long as Cassandra is away (a stream has nothing better to do), or until ``stop`` is set."""

    READ = (f"SELECT site, bucket, view_name, dim, {', '.join(SESSION_COLUMNS)}, query_id, through_batch "
            "FROM {ks}.speed_session_sums WHERE site = ? AND period = ? AND bucket >= ? AND bucket < ?")
    WRITE = (f"INSERT INTO {{ks}}.speed_session_sums ({', '.join(SUMS_COLUMNS)}) "
             f"VALUES ({', '.join('?' for _ in SUMS_COLUMNS)})")

    def prepare(self) -> None:
        self.statement(self.READ)
        self.statement(self.WRITE)

    def read(self, site: str, period: str, start: datetime, end: datetime, *,
             stop: threading.Event | None = None) -> list[dict[str, Any]]:
        """The sums of buckets in [start, end) of one (site, UTC day) partition."""
        rows = retrying(lambda: list(self.execute(self.READ, (site, period, start, end))),
                        "read of speed session sums", attempts=None, stop=stop)
        return [r._asdict() for r in rows]

    def write(self, sums: Iterable[Mapping[str, Any]], *, stop: threading.Event | None = None) -> int:
        params = ((r["site"], period_key("minute", r["bucket"]), r["bucket"], r["view_name"], r["dim"],
                   *(r[c] for c in SESSION_COLUMNS), r["query_id"], r["through_batch"]) for r in sums)
        return upsert(self.session, self.statement(self.WRITE), params, attempts=None, stop=stop,
                      partition_of=lambda p: p[:2])  # (site, period)

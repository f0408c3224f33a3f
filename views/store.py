"""How view rows are laid out in Cassandra: one definition for both layers' writers and
the serving layer's reader. Writes are upserts of a bucket's full value, never increments,
so a replayed micro-batch or a re-run batch job writes the same rows again."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from views.catalogue import EVENT_COLUMNS, SESSION_COLUMNS, TOTAL_DIM, TRAFFIC_VIEW, period_key

log = logging.getLogger(__name__)
T = TypeVar("T")

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


def as_utc(ts: datetime) -> datetime:
    """Spark hands timestamps back as naive datetimes in the session zone, which is UTC."""
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def read_boundaries(session: Any, keyspace: str) -> dict[str, datetime]:
    """Every site's batch boundary (UTC)."""
    rows = session.execute(f"SELECT site, boundary FROM {keyspace}.batch_boundary")
    return {r.site: as_utc(r.boundary) for r in rows if r.boundary}


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


def retrying(call: Callable[[], T], what: str, *, attempts: int | None = 30) -> T:
    """``call()``, retried while Cassandra is away, ``attempts`` times or, with None, for
    as long as it takes."""
    delay = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:  # NoHostAvailable, timeouts: Cassandra restarting or overloaded
            if attempts is not None and attempt >= attempts:
                raise
            log.warning("Cassandra %s failed (%s); retrying in %.0fs (attempt %d%s)", what, exc, delay, attempt,
                        f"/{attempts}" if attempts else "")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


# Rows of one partition are written as one unlogged batch (one mutation on the replica):
# far fewer round trips than a statement per row. Kept well under Cassandra's batch size
# limits (warn 5 KiB by default, fail 50 KiB): sketches make rows up to a few KiB.
BATCH_ROWS = 50
BATCH_BYTES = 40_000


def _partition_batches(statement: Any, rows: list[tuple], partition_of: Callable[[tuple], tuple]) -> list[Any]:
    from cassandra.query import BatchStatement, BatchType

    by_partition: dict[tuple, list[tuple]] = {}
    for row in rows:
        by_partition.setdefault(partition_of(row), []).append(row)
    batches = []
    for part_rows in by_partition.values():
        batch, size = BatchStatement(batch_type=BatchType.UNLOGGED), 0
        for row in part_rows:
            row_size = 200 + sum(len(v) for v in row if isinstance(v, (bytes, str)))
            if len(batch) and (len(batch) >= BATCH_ROWS or size + row_size > BATCH_BYTES):
                batches.append(batch)
                batch, size = BatchStatement(batch_type=BatchType.UNLOGGED), 0
            batch.add(statement, row)
            size += row_size
        batches.append(batch)
    return batches


def upsert(session: Any, statement: Any, params: Iterable[tuple], *, attempts: int | None = 30,
           concurrency: int = 32, partition_of: Callable[[tuple], tuple] | None = None) -> int:
    """Write all ``params`` with ``statement``, retrying the whole set while Cassandra is
    away (see ``retrying``). Retrying everything is safe: every write is an idempotent upsert.

    ``partition_of`` gives a row's partition key (``view_partition`` for view rows); rows
    of a partition then go in unlogged batches. None writes row by row.
    """
    from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args

    rows = list(params)

    def write() -> int:
        if partition_of is None:
            execute_concurrent_with_args(session, statement, rows, concurrency=concurrency, raise_on_first_error=True)
        else:
            batches = _partition_batches(statement, rows, partition_of)
            execute_concurrent(session, [(b, ()) for b in batches], concurrency=concurrency,
                               raise_on_first_error=True)
        return len(rows)

    return retrying(write, f"write of {len(rows)} rows", attempts=attempts)

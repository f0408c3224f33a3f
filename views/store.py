"""How view rows are laid out in Cassandra: one definition for both layers' writers and
the serving layer's reader. Writes are upserts of a bucket's full value, never increments,
so a replayed micro-batch or a re-run batch job writes the same rows again."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from views.catalogue import TOTAL_DIM, TRAFFIC_VIEW, period_key

log = logging.getLogger(__name__)

SPEED_TABLE = "speed_views"
BATCH_TABLE = "batch_views"
TABLES = (SPEED_TABLE, BATCH_TABLE)

COLUMNS = ("site", "view_name", "granularity", "period", "bucket", "dim", "pageviews", "events", "visitors",
           "visitors_sketch", "updated_at")


def upsert_cql(keyspace: str, table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"unknown view table {table!r}")
    cols = ", ".join(COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    return f"INSERT INTO {keyspace}.{table} ({cols}) VALUES ({marks})"


def select_cql(keyspace: str, table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"unknown view table {table!r}")
    return (
        f"SELECT bucket, dim, pageviews, events, visitors, visitors_sketch FROM {keyspace}.{table} "
        "WHERE site = ? AND view_name = ? AND granularity = ? AND period = ? AND bucket >= ? AND bucket < ?"
    )


def as_utc(ts: datetime) -> datetime:
    """Spark hands timestamps back as naive datetimes in the session zone, which is UTC."""
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def read_boundaries(session: Any, keyspace: str) -> dict[str, datetime]:
    """Every site's batch boundary (UTC)."""
    rows = session.execute(f"SELECT site, boundary FROM {keyspace}.batch_boundary")
    return {r.site: as_utc(r.boundary) for r in rows if r.boundary}


def view_params(row: Mapping[str, Any], granularity: str, now: datetime) -> tuple:
    """A row of ``views.transforms.views`` (or ``traffic``: the site total) -> the
    parameters of ``upsert_cql``."""
    bucket = as_utc(row["bucket"])
    sketch = row["visitors_sketch"]
    return (
        row["site"],
        row.get("view_name", TRAFFIC_VIEW),
        granularity,
        period_key(granularity, bucket),
        bucket,
        row.get("dim", TOTAL_DIM),
        int(row["pageviews"]),
        int(row["events"]),
        int(row["visitors"]),
        bytes(sketch) if sketch is not None else None,
        now,
    )


def upsert(session: Any, statement: Any, params: Iterable[tuple], *, attempts: int | None = 30,
           concurrency: int = 32) -> int:
    """Write all ``params`` with ``statement``; retry the whole set while Cassandra is away,
    ``attempts`` times or, with None, for as long as it takes.

    Retrying everything is safe because every write is an idempotent upsert.
    """
    from cassandra.concurrent import execute_concurrent_with_args

    rows = list(params)
    delay = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            results = execute_concurrent_with_args(session, statement, rows, concurrency=concurrency, raise_on_first_error=True)
            return len(results)
        except Exception as exc:  # NoHostAvailable, timeouts: Cassandra restarting or overloaded
            if attempts is not None and attempt >= attempts:
                raise
            log.warning("Cassandra write failed (%s); retrying %d rows in %.0fs (attempt %d%s)", exc, len(rows), delay,
                        attempt, f"/{attempts}" if attempts else "")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

"""How statements reach Cassandra: prepared once per session, writes retried while Cassandra
is away, many rows of a partition in one unlogged batch."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, TypeVar

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType, PreparedStatement

log = logging.getLogger(__name__)
T = TypeVar("T")


def as_date(value: Any) -> date:
    """A CQL ``date`` as read (the driver's ``cassandra.util.Date``) as a ``datetime.date``."""
    return value.date() if hasattr(value, "date") else value


class Tables:
    """A family of tables in one keyspace: its statements, written with ``{ks}`` for the
    keyspace, are prepared on first use and kept."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self.session, self.keyspace = session, keyspace
        self._prepared: dict[str, PreparedStatement] = {}

    def statement(self, cql: str) -> PreparedStatement:
        """``cql`` prepared (once). Preparing needs Cassandra: a stream prepares its statements
        when it starts, so that a later outage only delays its writes (``retrying``)."""
        if cql not in self._prepared:
            self._prepared[cql] = self.session.prepare(cql.format(ks=self.keyspace))
        return self._prepared[cql]

    def execute(self, cql: str, params: tuple = ()) -> Any:
        return self.session.execute(self.statement(cql), params)


def retrying(call: Callable[[], T], what: str, *, attempts: int | None = 30,
             stop: threading.Event | None = None) -> T:
    """``call()``, retried while Cassandra is away, ``attempts`` times or, with None, for
    as long as it takes; a set ``stop`` ends the waiting (the last error is raised), so that
    a process stopping is not held by a write that cannot be made."""
    delay = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:  # NoHostAvailable, timeouts: Cassandra restarting or overloaded
            if (attempts is not None and attempt >= attempts) or (stop is not None and stop.is_set()):
                raise
            log.warning("Cassandra %s failed (%s); retrying in %.0fs (attempt %d%s)", what, exc, delay, attempt,
                        f"/{attempts}" if attempts else "")
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                raise
            delay = min(delay * 2, 10.0)


# Rows of one partition are written as one unlogged batch (one mutation on the replica):
# far fewer round trips than a statement per row. Kept well under Cassandra's batch size
# limits (warn 5 KiB by default, fail 50 KiB): sketches make rows up to a few KiB.
BATCH_ROWS = 50
BATCH_BYTES = 40_000


def _partition_batches(statement: PreparedStatement, rows: list[tuple],
                       partition_of: Callable[[tuple], tuple]) -> list[BatchStatement]:
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


def upsert(session: Session, statement: PreparedStatement, params: Iterable[tuple], *, attempts: int | None = 30,
           concurrency: int = 32, partition_of: Callable[[tuple], tuple] | None = None,
           stop: threading.Event | None = None) -> int:
    """Write all ``params`` with ``statement``, retrying the whole set while Cassandra is
    away (see ``retrying``, and its ``stop``). Retrying everything is safe: every write is an
    idempotent upsert.

    ``partition_of`` gives a row's partition key (``store.views.view_partition`` for view
    rows); rows of a partition then go in unlogged batches. None writes row by row.
    """
    rows = list(params)

    def write() -> int:
        if partition_of is None:
            execute_concurrent_with_args(session, statement, rows, concurrency=concurrency, raise_on_first_error=True)
        else:
            batches = _partition_batches(statement, rows, partition_of)
            execute_concurrent(session, [(b, ()) for b in batches], concurrency=concurrency,
                               raise_on_first_error=True)
        return len(rows)

    return retrying(write, f"write of {len(rows)} rows", attempts=attempts, stop=stop)

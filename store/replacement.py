"""What a batch run needs to replace a site-day's batch view rows wholesale rather than only
upsert them: the view names each run wrote (``batch_view_names``), the rows stored in a
range of buckets, and the removal of those the new run did not write (or of one kind of
their columns). ``batch_layer.replace`` decides which."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from cassandra.concurrent import execute_concurrent_with_args

from store.cql import Tables, as_date, retrying, upsert
from store.views import BATCH_TABLE, KEY_COLUMNS, ROW_KINDS
from views.catalogue import as_utc, period_key, periods_between

# A view row's key without its period (which follows from the granularity and the bucket).
RowKey = tuple[str, str, str, datetime, str]  # site, view_name, granularity, bucket, dim
# The columns that say whether a row holds a kind ("event", "session"): any of them set.
# (The sketch is left out: it is never the only one set, and is the heaviest to read.)
PRESENCE = {kind: tuple(c for c in columns if c != "visitors_sketch") for kind, columns in ROW_KINDS.items()}


@dataclass(frozen=True)
class StoredRow:
    key: RowKey
    kinds: frozenset[str]  # the kinds whose columns the row holds


def row_key(site: str, view_name: str, granularity: str, bucket: datetime, dim: str) -> RowKey:
    return site, view_name, granularity, as_utc(bucket), dim


class ViewNames(Tables):
    """``batch_view_names``: per site, local day and kind, the views a batch run wrote."""

    def read(self, site: str, first: date, last: date) -> dict[tuple[date, str], frozenset[str]]:
        """{(day, kind): view names} of the site's days ``first``..``last``."""
        rows = retrying(lambda: list(self.execute(
            "SELECT day, kind, view_names FROM {ks}.batch_view_names WHERE site = ? AND day >= ? AND day <= ?",
            (site, first, last))), "read of batch view names")
        return {(as_date(r.day), r.kind): frozenset(r.view_names or ())
                for r in rows}

    def add(self, names: Mapping[tuple[str, date, str], Iterable[str]], now: datetime) -> None:
        """Add view names to those recorded: {(site, day, kind): names}."""
        upsert(self.session, self.statement(
            "UPDATE {ks}.batch_view_names SET view_names = view_names + ?, updated_at = ? "
            "WHERE site = ? AND day = ? AND kind = ?"),
            [(set(v), now, site, day, kind) for (site, day, kind), v in sorted(names.items()) if v])

    def put(self, names: Mapping[tuple[str, date, str], Iterable[str]], now: datetime) -> None:
        """Record exactly these view names: {(site, day, kind): names}."""
        upsert(self.session, self.statement(
            "UPDATE {ks}.batch_view_names SET view_names = ?, updated_at = ? WHERE site = ? AND day = ? AND kind = ?"),
            [(set(v), now, site, day, kind) for (site, day, kind), v in sorted(names.items())])


class BatchRows(Tables):
    """The batch view rows of a site's bucket range, and their removal."""

    SELECT = (f"SELECT bucket, dim, {', '.join(PRESENCE['event'] + PRESENCE['session'])} FROM {{ks}}.{BATCH_TABLE} "
              "WHERE site = ? AND view_name = ? AND granularity = ? AND period = ? AND bucket >= ? AND bucket < ?")
    DELETE_ROW = f"DELETE FROM {{ks}}.{BATCH_TABLE} WHERE {' AND '.join(f'{c} = ?' for c in KEY_COLUMNS)}"

    def stored(self, site: str, views: Iterable[tuple[str, str]], start: datetime, end: datetime) -> list[StoredRow]:
        """The rows of ``views`` ((view name, granularity) pairs) with buckets in [start, end),
        their partitions read concurrently."""
        params = [(site, view, granularity, period, start, end) for view, granularity in sorted(set(views))
                  for period in periods_between(granularity, start, end)]
        statement = self.statement(self.SELECT)
        results = retrying(lambda: execute_concurrent_with_args(self.session, statement, params, concurrency=16,
                                                                raise_on_first_error=True), "read of batch view rows")
        out: list[StoredRow] = []
        for (_, view, granularity, *_), (_, rows) in zip(params, results):
            for r in rows:
                kinds = frozenset(k for k, cols in PRESENCE.items() if any(getattr(r, c) is not None for c in cols))
                out.append(StoredRow(row_key(site, view, granularity, r.bucket, r.dim), kinds))
        return out

    def remove(self, rows: Iterable[RowKey]) -> int:
        """Delete whole rows; returns how many."""
        params = [_key_params(k) for k in rows]
        return upsert(self.session, self.statement(self.DELETE_ROW), params, partition_of=lambda p: p[:4])

    def clear(self, kind: str, rows: Iterable[RowKey]) -> int:
        """Delete the ``kind`` columns of rows (the other kind's stay); returns how many."""
        cql = (f"DELETE {', '.join(ROW_KINDS[kind])} FROM {{ks}}.{BATCH_TABLE} "
               f"WHERE {' AND '.join(f'{c} = ?' for c in KEY_COLUMNS)}")
        params = [_key_params(k) for k in rows]
        return upsert(self.session, self.statement(cql), params, partition_of=lambda p: p[:4])


def _key_params(key: RowKey) -> tuple:
    site, view, granularity, bucket, dim = key
    return site, view, granularity, period_key(granularity, bucket), bucket, dim

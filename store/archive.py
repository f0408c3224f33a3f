"""The master dataset read on demand: the files of its Delta table's current version
(``deltalake`` reads the table's log), and SQL over them in an embedded DuckDB
(``views.sql`` renders the catalogue's measures and dimensions).

Only the files the log lists are read: a file written by a micro-batch that failed, or
replaced by a compaction or an erasure, is on disk but not in the table. The table has no
deletion vectors (``infra.spark.DELTA_TABLE_DEFAULTS``), so a listed file holds exactly
its rows.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

log = logging.getLogger(__name__)
LOG_DIR = "_delta_log"


class Archive:
    """The master dataset under ``master_dir``, read with DuckDB (``threads`` each query)."""

    def __init__(self, master_dir: Path, threads: int = 2, memory_limit: str = "1GB",
                 spill_dir: Path | None = None) -> None:
        self.master_dir = Path(master_dir)
        # A query over its memory limit spills here (DuckDB's default is the working directory).
        config: dict[str, str | int] = {"threads": threads, "memory_limit": memory_limit}
        if spill_dir is not None:
            Path(spill_dir).mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(spill_dir)
        self._db = duckdb.connect(config=config)
        self._lock = threading.Lock()
        self._table: DeltaTable | None = None

    def _current(self) -> DeltaTable | None:
        """The table at its newest version (the log read incrementally); None before the
        speed layer's first commit."""
        with self._lock:
            try:
                if self._table is None:
                    self._table = DeltaTable(str(self.master_dir))
                else:
                    self._table.update_incremental()
            except TableNotFoundError:
                return None
            return self._table

    def version(self) -> int:
        """The table's current version (-1 before the first commit): what the archive holds
        changes only when this does."""
        table = self._current()
        return table.version() if table is not None else -1

    def committed_at(self) -> datetime | None:
        """When the table's current version was committed (its commit file's modification
        time, as Delta's protocol defines it): an answer computed from it holds what had
        arrived by then."""
        version = self.version()
        if version < 0:
            return None
        try:
            mtime = (self.master_dir / LOG_DIR / f"{version:020}.json").stat().st_mtime
        except FileNotFoundError:  # the log was cleaned up to a checkpoint since
            return None
        return datetime.fromtimestamp(mtime, timezone.utc)

    def files_of_days(self, first: date, last: date) -> list[Path]:
        """The current files of the (UTC) date partitions first..last."""
        table = self._current()
        if table is None:
            return []
        days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        with self._lock:
            return [Path(uri) for uri in table.file_uris(file_pruning_predicate=[("date", "in", days)])]

    def rows_in(self, files: Iterable[Path]) -> int:
        """How many events the files hold (from their Parquet footers: nothing is scanned)."""
        names = [str(f) for f in files]
        if not names:
            return 0
        with self._lock:
            cursor = self._db.cursor()
        try:
            return int(cursor.execute("SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)",
                                      [names]).fetchone()[0])
        finally:
            cursor.close()

    def query(self, files: Sequence[Path], sql: str, params: Sequence[object], fields: Mapping[str, str]
              ) -> list[tuple]:
        """``sql`` over the events of ``files``, which it names ``{events}``: a relation of
        ``fields`` (name -> SQL type; NULL where the files predate a field)."""
        if not files:
            return []
        listed = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
        source = f"read_parquet({listed}, union_by_name = true)"
        with self._lock:
            cursor = self._db.cursor()  # one per query: a cursor is not shared between threads
        try:
            present = {row[0] for row in cursor.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            columns = ", ".join(f if f in present else f"NULL::{kind} AS {f}" for f, kind in fields.items())
            return cursor.execute(sql.replace("{events}", f"(SELECT {columns} FROM {source})"),
                                  list(params)).fetchall()
        finally:
            cursor.close()

    def close(self) -> None:
        self._db.close()

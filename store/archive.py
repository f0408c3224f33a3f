"""The master dataset read on demand: its committed Parquet files, and SQL over them in an
embedded DuckDB (``views.sql`` renders the catalogue's measures and dimensions).

Spark's file sink decides which files are committed in its log (``_spark_metadata``): a
file written by a micro-batch that failed is on disk but not in the log, so only logged
files are read. The log holds a compacted file every few batches and the batches since;
the last compaction and what follows it list every committed file.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb

log = logging.getLogger(__name__)
LOG_DIR = "_spark_metadata"


def _batch_id(name: str) -> int | None:
    stem = name.removesuffix(".compact")
    return int(stem) if stem.isdigit() else None


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else Path(uri)


def _day_of(path: Path) -> date | None:
    for part in path.parts:
        if part.startswith("date="):
            try:
                return date.fromisoformat(part.removeprefix("date="))
            except ValueError:
                return None
    return None


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

    def version(self) -> int:
        """The last committed micro-batch of the archive (-1 before the first): what the
        archive holds changes only when this does."""
        ids = [i for i in map(_batch_id, self._log_names()) if i is not None]
        return max(ids, default=-1)

    def committed_at(self) -> datetime | None:
        """When the archive last committed (its log's newest file; without a log, its
        newest file): an answer computed from it holds what had arrived by then."""
        log_dir = self.master_dir / LOG_DIR
        files = list(log_dir.iterdir()) if log_dir.is_dir() else list(self.master_dir.glob("date=*/*.parquet"))
        newest = max((f.stat().st_mtime for f in files), default=None)
        return datetime.fromtimestamp(newest, timezone.utc) if newest is not None else None

    def _log_names(self) -> list[str]:
        try:
            return [p.name for p in (self.master_dir / LOG_DIR).iterdir()]
        except FileNotFoundError:
            return []

    def committed_files(self) -> list[Path]:
        """Every Parquet file the archive's log lists as committed (every file of the date
        partitions for a dataset written without the log, in one batch write)."""
        if not (self.master_dir / LOG_DIR).is_dir():
            return sorted(self.master_dir.glob("date=*/*.parquet"))
        names = {n: _batch_id(n) for n in self._log_names()}
        compacts = [i for n, i in names.items() if i is not None and n.endswith(".compact")]
        since = max(compacts, default=-1)
        files: dict[Path, None] = {}
        for name, batch in sorted(names.items(), key=lambda kv: (kv[1] if kv[1] is not None else -2)):
            if batch is None or batch < since or (batch == since and not name.endswith(".compact")):
                continue
            for line in (self.master_dir / LOG_DIR / name).read_text().splitlines()[1:]:
                entry = json.loads(line)
                if entry.get("action", "add") == "add":
                    files[_local_path(entry["path"])] = None
        return list(files)

    def files_of_days(self, first: date, last: date) -> list[Path]:
        """The committed files of the (UTC) days first..last."""
        days = {first + timedelta(days=i) for i in range((last - first).days + 1)}
        return [f for f in self.committed_files() if _day_of(f) in days]

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

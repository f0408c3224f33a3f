"""The ground truth: every event the collector accepted, one record per accepted copy, and
a summary per site of what the views should count from them.

Record fields (JSON Lines, or Parquet with the same columns; ``props`` as strings there):
the event as sent (``event_id``, ``type``, ``ts``, ``url``, ``referrer``, ``name``,
``props``) and ``site``, ``path``, ``visitor`` (the generator's visitor key: the
``visitor_id`` sent, or with ``--cookieless`` the token in the User-Agent), ``session``
(the generator's visit, "<visitor>/<n>"), ``user_agent`` with the ``device``,
``browser`` and ``os`` the collector should derive from it, ``late_ms`` (how long after
the event happened it was sent; 0 for live events), ``duplicate`` (true for a second
accepted copy of an event id) and ``sent_at`` (epoch ms of the accepting answer).
"""
from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from tools.generator.model import SESSION_GAP_MS, Delivery
from views.goals import Goal


def records_of(delivery: Delivery, accepted: Sequence[int], sent_at: int, duplicate: bool = False
               ) -> list[dict[str, Any]]:
    """Truth records of the events of ``delivery`` at indices ``accepted``."""
    out = []
    for i in accepted:
        e = delivery.events[i]
        out.append({
            "site": delivery.site, "event_id": e["event_id"], "type": e["type"], "ts": e["ts"], "url": e["url"],
            "path": urlsplit(e["url"]).path or "/", "referrer": e.get("referrer"), "name": e.get("name"),
            "props": e.get("props"), "visitor": delivery.visitor, "session": delivery.session,
            "user_agent": delivery.user_agent, "device": delivery.agent.device, "browser": delivery.agent.browser,
            "os": delivery.agent.os, "late_ms": delivery.late_ms, "duplicate": duplicate, "sent_at": sent_at,
        })
    return out


class Row(NamedTuple):
    """What the summary needs of a record."""
    site: str
    event_id: str
    visitor: str
    ts: int
    type: str
    path: str
    name: str | None
    late: bool
    duplicate: bool
    device: str


def row_of(record: dict[str, Any]) -> Row:
    return Row(record["site"], record["event_id"], record["visitor"], record["ts"], record["type"], record["path"],
               record.get("name"), record.get("late_ms", 0) > 0, bool(record.get("duplicate")), record["device"])


def converts(goal: Goal, row: Row) -> bool:
    """The views' rule (views.transforms.goal_hits): a pageview whose path matches a page
    goal; an event whose name (else its type) is an event goal's."""
    if goal.kind == "page":
        return row.type == "pageview" and re.match(goal.regex(), row.path) is not None
    return (row.name or row.type) == goal.pattern


def summarize(rows: Iterable[Row], goals: Sequence[Goal] = (), gap_ms: int = SESSION_GAP_MS) -> dict[str, Any]:
    """Per site: what the views count from these events once repeated event ids are
    dropped (events, pageviews, clicks, impressions, custom events, visitors, sessions by
    the gap rule, bounces, conversions and converted visitors per goal), and what was sent
    beyond that (duplicate copies, late events, bot events)."""
    unique: dict[str, Row] = {}
    duplicates: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.event_id in unique:
            duplicates[row.site] += 1
        else:
            unique[row.event_id] = row
    by_site: dict[str, list[Row]] = defaultdict(list)
    for row in unique.values():
        by_site[row.site].append(row)
    return {site: _site_summary(site_rows, [g for g in goals if g.site == site], duplicates[site], gap_ms)
            for site, site_rows in sorted(by_site.items())}


def _site_summary(rows: list[Row], goals: list[Goal], duplicates: int, gap_ms: int) -> dict[str, Any]:
    by_visitor: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_visitor[row.visitor].append(row)
    sessions = bounces = 0
    for visitor_rows in by_visitor.values():
        visitor_rows.sort(key=lambda r: r.ts)
        pageviews, last = 0, None
        for row in visitor_rows:
            if last is not None and row.ts - last > gap_ms:  # the gap ends a session
                sessions, bounces = sessions + 1, bounces + (pageviews == 1)
                pageviews = 0
            pageviews += row.type == "pageview"
            last = row.ts
        sessions, bounces = sessions + 1, bounces + (pageviews == 1)
    conversions = {g.name: [r for r in rows if converts(g, r)] for g in goals}
    return {
        "events": len(rows),
        "pageviews": sum(r.type == "pageview" for r in rows),
        "clicks": sum(r.type == "click" for r in rows),
        "impressions": sum(r.type == "impression" for r in rows),
        "custom": sum(r.type == "custom" for r in rows),
        "visitors": len(by_visitor),
        "sessions": sessions,
        "bounces": bounces,
        "conversions": {name: len(hits) for name, hits in sorted(conversions.items())},
        "converted_visitors": {name: len({r.visitor for r in hits}) for name, hits in sorted(conversions.items())},
        "duplicates_sent": duplicates,
        "late_events": sum(r.late for r in rows),
        "bot_events": sum(r.device == "bot" for r in rows),
        "first_ts": min(r.ts for r in rows),
        "last_ts": max(r.ts for r in rows),
    }


def totals(per_site: dict[str, dict[str, Any]]) -> dict[str, int]:
    keys = ("events", "pageviews", "clicks", "impressions", "custom", "visitors", "sessions", "bounces",
            "duplicates_sent", "late_events", "bot_events")
    return {k: sum(s[k] for s in per_site.values()) for k in keys}


def read_truth(path: Path) -> list[dict[str, Any]]:
    """The records of a truth file (JSON Lines or Parquet)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # noqa: PLC0415 -- pyarrow, heavy: only a .parquet truth needs it

        records = pq.read_table(path).to_pylist()
        for r in records:
            r["props"] = dict(r["props"]) if r["props"] is not None else None
        return records
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def summary_path(truth: Path) -> Path:
    return truth.with_name(truth.stem + ".summary.json")


class TruthWriter:
    """Appends accepted events to the truth file as they are acknowledged (so an
    interrupted run still leaves what it sent), and keeps the summary's rows. Thread-safe."""

    PARQUET_ROWS = 10_000  # records per Parquet row group

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.parquet = path.suffix == ".parquet"
        self.rows: list[Row] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._buffer: list[dict[str, Any]] = []
        self._writer: Any = None
        self._fh = None if self.parquet else path.open("w")

    def accept(self, delivery: Delivery, accepted: Sequence[int], sent_at: int) -> int:
        """Record the accepted events of one answer; how many there were."""
        with self._lock:
            records = []
            for i in accepted:
                event_id = delivery.events[i]["event_id"]
                records += records_of(delivery, [i], sent_at, duplicate=event_id in self._seen)
                self._seen.add(event_id)
            self.rows.extend(row_of(r) for r in records)
            if self.parquet:
                self._buffer.extend(records)
                if len(self._buffer) >= self.PARQUET_ROWS:
                    self._write_parquet()
            else:
                assert self._fh is not None
                self._fh.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
            return len(records)

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            if self.parquet:
                self._write_parquet(final=True)

    def _write_parquet(self, final: bool = False) -> None:
        import pyarrow as pa  # noqa: PLC0415 -- pyarrow, heavy: only a .parquet truth needs it
        import pyarrow.parquet as pq  # noqa: PLC0415

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, _parquet_schema())
        if self._buffer:
            rows = [{**r, "props": _string_props(r["props"])} for r in self._buffer]
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self._writer.schema))
            self._buffer = []
        if final:
            self._writer.close()


def _string_props(props: dict[str, Any] | None) -> list[tuple[str, str]] | None:
    """Property values as strings, the way the collector stores them."""
    if not props:
        return None
    return [(k, json.dumps(v) if isinstance(v, bool) else str(v)) for k, v in props.items()]


def _parquet_schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415 -- pyarrow, heavy: only a .parquet truth needs it

    return pa.schema([
        ("site", pa.string()), ("event_id", pa.string()), ("type", pa.string()), ("ts", pa.int64()),
        ("url", pa.string()), ("path", pa.string()), ("referrer", pa.string()), ("name", pa.string()),
        ("props", pa.map_(pa.string(), pa.string())), ("visitor", pa.string()), ("session", pa.string()),
        ("user_agent", pa.string()), ("device", pa.string()), ("browser", pa.string()), ("os", pa.string()),
        ("late_ms", pa.int64()), ("duplicate", pa.bool_()), ("sent_at", pa.int64()),
    ])

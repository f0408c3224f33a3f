"""Synthetic events for benchmarks and tests: small, explicit and reproducible, each field
chosen by the caller (realistic traffic is ``tools.generator``'s).

- ``tracker_event``: an event as the tracker posts it to the collector;
- ``archived_event``: an enriched event as the collector writes it and the archive keeps it;
- ``tools.synthetic.spark``: millions of enriched events as a Spark column, for the benches.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any


def now_ms() -> int:
    return int(time.time() * 1000)


def tracker_event(ts: int | None = None, url: str = "https://www.example.test/", type: str = "pageview",
                  **fields: Any) -> dict[str, Any]:
    """A valid tracker event with a fresh ``event_id`` (unless given), dated now (unless
    ``ts``, epoch ms), with any other fields of the event schema."""
    event_id = fields.pop("event_id", None) or str(uuid.uuid4())
    return {"event_id": event_id, "type": type, "ts": now_ms() if ts is None else ts, "url": url, **fields}


def archived_event(site: str, ts: datetime, visitor: str, kind: str = "pageview", path: str = "/", query: str = "",
                   referrer: str | None = None, props: dict | None = None, host: str = "x.test",
                   **enriched: Any) -> dict[str, Any]:
    """An enriched event as Kafka `events` and the master dataset hold it: a custom event is
    named "signup"; ``enriched``: the collector's fields (country, device, sources, ...)."""
    return {"event_id": str(uuid.uuid4()), "site": site, "type": kind, "ts": int(ts.timestamp() * 1000),
            "url": f"https://{host}{path}{query}", "path": path, "referrer": referrer, "visitor_id": visitor,
            "received_at": 0, "schema_version": 2, "name": "signup" if kind == "custom" else None, "props": props,
            **enriched}

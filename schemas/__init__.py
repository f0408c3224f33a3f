"""The contracts between Parallax's parts: event JSON Schema, Kafka topics, Cassandra CQL.

This package imports nothing of Parallax's own; every other package may import it.
"""
from __future__ import annotations

import json
import re
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# A site's id, as events name it and as `parallax site add` registers it.
SITE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
EVENT_SCHEMA_VERSION = 2  # the latest; events that name no version are checked against it
EVENT_SCHEMA_VERSIONS = (1, 2)

# The enriched event as the collector writes it to Kafka `events` (JSON, one per message)
# and as the archive stores it in the master dataset. Spark reads it with this DDL.
ENRICHED_EVENT_DDL = (
    "event_id STRING, site STRING, type STRING, ts LONG, url STRING, path STRING, "
    "referrer STRING, visitor_id STRING, received_at LONG, schema_version INT, "
    "name STRING, props MAP<STRING, STRING>, "
    # Filled in by the collector's enrichment; null in events archived before it existed.
    "country STRING, device STRING, browser STRING, os STRING, "
    # Where the visit came from (schemas.sources), classified by the collector and stamped
    # with the rule's version; the batch layer classifies again events whose stamp is not
    # the current rule's (null in events archived before the collector classified).
    "channel STRING, source STRING, utm_source STRING, utm_medium STRING, utm_campaign STRING, source_rule STRING"
)
# Each field's "name TYPE": split at the top-level commas (not the one in MAP<..., ...>).
_ENRICHED_EVENT_COLUMNS = tuple(re.split(r",\s(?=\w+ [A-Z])", ENRICHED_EVENT_DDL))
ENRICHED_EVENT_FIELDS = tuple(column.split(" ", 1)[0] for column in _ENRICHED_EVENT_COLUMNS)


ENRICHED_EVENT_TYPES = {name: column.split(" ", 1)[1] for column, name in zip(_ENRICHED_EVENT_COLUMNS,
                                                                               ENRICHED_EVENT_FIELDS)}


def enriched_event_ddl(fields: Collection[str]) -> str:
    """The DDL of the enriched event's ``fields`` only (in the DDL's order)."""
    return ", ".join(c for c, name in zip(_ENRICHED_EVENT_COLUMNS, ENRICHED_EVENT_FIELDS) if name in fields)


@lru_cache
def event_schema(version: int = EVENT_SCHEMA_VERSION) -> dict[str, Any]:
    return json.loads((HERE / f"event.v{version}.json").read_text())


@lru_cache
def topics() -> dict[str, dict[str, Any]]:
    return json.loads((HERE / "topics.json").read_text())


def cql_statements(keyspace: str, replication_factor: int = 1) -> list[str]:
    """The schema's CQL statements, keyspace and replication filled in, comments removed."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,47}", keyspace):
        raise ValueError(f"invalid keyspace name {keyspace!r}")
    replication = f"{{'class': 'SimpleStrategy', 'replication_factor': {int(replication_factor)}}}"
    text = (HERE / "cassandra.cql").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    text = text.replace("{keyspace}", keyspace).replace("{replication}", replication)
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]

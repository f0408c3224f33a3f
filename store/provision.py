"""What `parallax stack up` puts in the running services, from ``schemas/``: Kafka's topics,
and Cassandra's keyspace and tables with their migrations. Idempotent: running it again
changes nothing."""
from __future__ import annotations

import logging
import re

from infra.clients import cassandra_session, create_topics
from infra.settings import Settings
from schemas import cql_statements, topics
from store.boundary import Boundaries

log = logging.getLogger(__name__)

ALTER_ADD = re.compile(r"ALTER TABLE (\w+)\.(\w+) ADD \(?(.*?)\)?$", re.S | re.I)


def missing_columns(statement: str, existing: set[str]) -> list[str]:
    """The ``name type`` definitions of an ``ALTER TABLE ... ADD`` migration whose columns
    the table lacks (all of them if ``existing`` is empty)."""
    m = ALTER_ADD.match(statement.strip())
    if not m:
        raise ValueError(f"unsupported migration {statement!r}: only ALTER TABLE ... ADD (columns)")
    defs = [d.strip() for d in m.group(3).split(",") if d.strip()]
    return [d for d in defs if d.split()[0].lower() not in existing]


def apply_schema(settings: Settings) -> None:
    """Create the keyspace and tables, then add the columns of each migration the table
    lacks (read from the driver's schema metadata), and fill a new table from an old one."""
    session = cassandra_session(settings)
    try:
        for statement in cql_statements(settings.cassandra.keyspace, settings.cassandra.replication_factor):
            if not statement.upper().startswith("ALTER TABLE"):
                session.execute(statement, timeout=60)
                continue
            keyspace, table = ALTER_ADD.match(statement.strip()).group(1, 2)
            session.cluster.refresh_table_metadata(keyspace, table)
            existing = set(session.cluster.metadata.keyspaces[keyspace].tables[table].columns)
            wanted = missing_columns(statement, existing)
            if wanted:
                session.execute(f"ALTER TABLE {keyspace}.{table} ADD ({', '.join(wanted)})", timeout=60)
                log.info("added column(s) to %s.%s: %s", keyspace, table, ", ".join(wanted))
        copied = Boundaries(session, settings.cassandra.keyspace).backfill_days()
        if copied:
            log.info("batch_days filled from the %d batch runs recorded before it", copied)
        log.info("Cassandra keyspace %s and tables are in place", settings.cassandra.keyspace)
    finally:
        session.cluster.shutdown()


def create_schema_topics(settings: Settings) -> list[str]:
    """The topics of ``schemas/topics.json``, under their configured names."""
    names = settings.kafka.topic_names()
    return create_topics(settings, {names[key]: spec for key, spec in topics().items()})


def provision(settings: Settings) -> None:
    """The topics, then the keyspace and tables."""
    create_schema_topics(settings)
    apply_schema(settings)

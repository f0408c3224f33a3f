"""The catalogue's event measures and dimensions as SQL, for answers computed on demand
from the master dataset by an embedded columnar engine (DuckDB, ``store.archive``).

Rendered from the same declarations the Spark transforms use (``EVENT_COUNTS``, each
dimension's ``fields``, the goals' regular expressions), so the archive counts what the
views count. Pure text: no engine is imported here. Values are never spliced into the SQL:
every value a caller gives is a ``?`` parameter, listed beside the text.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas import ENRICHED_EVENT_TYPES
from schemas.sources import NONE_VALUE
from views.catalogue import DIMENSIONS, EVENT_COUNTS, GOAL_VIEW, PROPERTY_VIEW_PREFIX
from views.filters import Filter
from views.goals import Goal

# The measures the archive answers: the event measures (sessions need the sessions of the
# layers, which the archive does not rebuild).
COUNT_SQL = {column: "count(*)" if counted is None else f"count(*) FILTER (WHERE type = '{counted}')"
             for column, counted in EVENT_COUNTS.items()}
VISITORS_SQL = "count(DISTINCT visitor_id)"
_SQL_TYPES = {"STRING": "VARCHAR", "LONG": "BIGINT", "INT": "INTEGER", "MAP<STRING, STRING>": "MAP(VARCHAR, VARCHAR)"}
# The archived event's fields and their SQL types (a field older files lack reads as NULL).
EVENT_FIELDS = {name: _SQL_TYPES[spark] for name, spark in ENRICHED_EVENT_TYPES.items()}


@dataclass
class Sql:
    """A SQL text and its parameters, in order."""
    text: str
    params: list[object] = field(default_factory=list)


def _literal(value: str) -> str:
    """A constant of the catalogue (never a caller's value) as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def dimension_sql(name: str, goals: Sequence[Goal] = ()) -> Sql:
    """An event dimension's value; NULL where the event is not in the dimension's view (a
    click's element, a property the event lacks). The goal dimension is a list: the goals
    the event converts."""
    if name in DIMENSIONS and DIMENSIONS[name].fields:
        return Sql(f"coalesce({', '.join(DIMENSIONS[name].fields)}, {_literal(NONE_VALUE)})")
    if name == "element":
        return Sql("CASE WHEN type IN ('click', 'impression') THEN props['element'] END")
    if name == GOAL_VIEW:
        hits, params = [], []
        for g in goals:
            if g.kind == "page":
                hits.append("CASE WHEN type = 'pageview' AND regexp_full_match(path, ?) THEN ? END")
            else:
                hits.append("CASE WHEN coalesce(name, type) = ? THEN ? END")
            params += [g.regex() if g.kind == "page" else g.pattern, g.name]
        # list_distinct drops the NULLs (goals the event does not convert); names are distinct.
        return Sql(f"list_distinct([{', '.join(hits)}]::VARCHAR[])" if hits else "[]::VARCHAR[]", params)
    if name.startswith(PROPERTY_VIEW_PREFIX):
        return Sql(f"CASE WHEN map_contains(props, ?) THEN coalesce(props[?], {_literal(NONE_VALUE)}) END",
                   [name.removeprefix(PROPERTY_VIEW_PREFIX)] * 2)
    raise ValueError(f"{name!r} is not an event dimension")


def filter_sql(f: Filter, goals: Sequence[Goal] = ()) -> Sql:
    """An event filter: the event is in the dimension's view with a value that matches."""
    dim = dimension_sql(f.dimension, goals)
    if f.dimension == GOAL_VIEW:
        return Sql(f"list_contains({dim.text}, ?)", [*dim.params, f.value])
    test = {"==": "{d} = ?", "!=": "{d} <> ?", "=@": "contains({d}, ?)", "!@": "NOT contains({d}, ?)"}[f.op]
    return Sql(f"({dim.text} IS NOT NULL AND {test.format(d=dim.text)})", [*dim.params, *dim.params, f.value])


def where_sql(filters: Sequence[Filter], goals: Sequence[Goal] = ()) -> Sql:
    parts = [filter_sql(f, goals) for f in filters]
    return Sql(" AND ".join(p.text for p in parts) or "true", [x for p in parts for x in p.params])


def measures_sql(columns: Sequence[str]) -> str:
    """The aggregate of each stored column asked for (counts and ``visitors``)."""
    return ", ".join(f"{VISITORS_SQL if c == 'visitors' else COUNT_SQL[c]} AS {c}" for c in columns)

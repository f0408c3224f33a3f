"""The value of every event dimension of the catalogue, derived once per event."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas.sources import ACQUISITION_FIELDS, NONE_VALUE
from views.catalogue import DIMENSIONS, GOAL_VIEW, SESSION_DIMENSIONS


def dim_column(name: str) -> str:
    return f"dim_{name}"


# Dimensions every event has a value of; the others are conditional (an element only for
# clicks and impressions, a goal only for conversions) or come from sessions.
CONDITIONAL_DIMENSIONS = ("element", GOAL_VIEW)


def _enriched(events: DataFrame, name: str) -> Column:
    """A field of the collector's enrichment; "(none)" where it is missing."""
    return F.coalesce(F.col(name), F.lit(NONE_VALUE)) if name in events.columns else F.lit(NONE_VALUE)


def with_dimensions(events: DataFrame) -> DataFrame:
    """The value of every event dimension of the catalogue, as one column each (``dim_<name>``).

    Derived once per event (URL parsing is the costly part): the batch layer derives them
    in its hour aggregation and rolls the days up from that. Where the visit came from is
    the event's acquisition fields as they are ("(none)" where missing): the batch layer
    brings stale ones up to date first (``views.transforms.channels.with_acquisition``).
    """
    fixed = {
        "page": F.coalesce(F.col("path"), F.lit(NONE_VALUE)),
        **{name: _enriched(events, name) for name in ACQUISITION_FIELDS},
        "country": _enriched(events, "country"),
        "device": _enriched(events, "device"),
        "browser": _enriched(events, "browser"),
        "os": _enriched(events, "os"),
        "event_name": F.coalesce(F.col("name"), F.col("type")),
    }
    assert set(fixed) == set(DIMENSIONS) - set(CONDITIONAL_DIMENSIONS) - set(SESSION_DIMENSIONS), \
        "every event dimension of the catalogue has its expression here"
    return events.select("*", *(expr.alias(dim_column(name)) for name, expr in fixed.items()))

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


def _field(events: DataFrame, name: str) -> Column:
    return F.col(name) if name in events.columns else F.lit(None).cast("string")


def dimension_value(events: DataFrame, name: str) -> Column:
    """An event dimension's value as the catalogue defines it: the first of its fields
    that is set, else "(none)" (a field the events lack, as before the collector filled
    it in, counts as unset)."""
    return F.coalesce(*(_field(events, f) for f in DIMENSIONS[name].fields), F.lit(NONE_VALUE))


def with_dimensions(events: DataFrame) -> DataFrame:
    """The value of every event dimension of the catalogue, as one column each (``dim_<name>``).

    Derived once per event (URL parsing is the costly part): the batch layer derives them
    in its hour aggregation and rolls the days up from that. Where the visit came from is
    the event's acquisition fields as they are ("(none)" where missing): the batch layer
    brings stale ones up to date first (``views.transforms.channels.with_acquisition``).
    """
    fixed = [name for name, d in DIMENSIONS.items() if d.fields]
    assert set(fixed) == set(DIMENSIONS) - set(CONDITIONAL_DIMENSIONS) - set(SESSION_DIMENSIONS), \
        "every event dimension of the catalogue says which fields it takes"
    assert set(ACQUISITION_FIELDS) <= set(fixed)
    return events.select("*", *(dimension_value(events, name).alias(dim_column(name)) for name in fixed))

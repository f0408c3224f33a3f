"""The value of every event dimension of the catalogue, derived once per event."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas.sources import NONE_VALUE, SOURCE_FIELDS, UTM_FIELDS
from views.catalogue import DIMENSIONS, GOAL_VIEW, SESSION_DIMENSIONS
from views.transforms.referrers import referrer_class, referrer_parts, utm


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
    in its hour aggregation and rolls the days up from that.
    """
    # Where the visit came from: the collector's classification (schemas.sources); for
    # events archived before it classified, the same rule in Spark, parsed only for them.
    collected = all(field in events.columns for field in SOURCE_FIELDS)
    legacy = F.col("referrer_source").isNull() if collected else F.lit(True)
    parts = {f"_referrer_{name}": F.when(legacy, part)
             for name, part in referrer_parts(F.col("url"), F.col("referrer")).items()}
    sources = {
        "referrer_source": referrer_class(**{name.removeprefix("_referrer_"): F.col(name) for name in parts}),
        **{name: utm(name) for name in UTM_FIELDS},
    }
    if collected:
        sources = {name: F.when(legacy, expr).otherwise(F.col(name)) for name, expr in sources.items()}
    fixed = {
        "page": F.coalesce(F.col("path"), F.lit(NONE_VALUE)),
        **sources,
        "country": _enriched(events, "country"),
        "device": _enriched(events, "device"),
        "browser": _enriched(events, "browser"),
        "os": _enriched(events, "os"),
        "event_name": F.coalesce(F.col("name"), F.col("type")),
    }
    assert set(fixed) == set(DIMENSIONS) - set(CONDITIONAL_DIMENSIONS) - set(SESSION_DIMENSIONS), \
        "every event dimension of the catalogue has its expression here"
    # The parts are a projection of their own, which Spark keeps (it does not inline an
    # expression used more than once), so each is computed once per event.
    with_parts = events.select("*", *(part.alias(name) for name, part in parts.items()))
    return with_parts.select("*", *(expr.alias(dim_column(name)) for name, expr in fixed.items())).drop(*parts)

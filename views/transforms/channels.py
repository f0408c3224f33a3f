"""Where a visit came from, in Spark: the rule of ``schemas.sources`` itself, run by Spark
(a vectorised Python UDF) on the events whose stamp is not the current rule's."""
from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType, StructField, StructType

from schemas.sources import ACQUISITION_FIELDS, RULE_VERSION, classify

# A type, not DDL: parsing DDL needs a running session, and this module is imported without.
ACQUISITION_TYPE = StructType([StructField(name, StringType()) for name in ACQUISITION_FIELDS])


@pandas_udf(ACQUISITION_TYPE)  # type: ignore[call-overload]
def _classified(url: pd.Series, referrer: pd.Series, domains: pd.Series) -> pd.DataFrame:
    """The acquisition of each row; nulls for rows without a URL (those not to classify)."""
    out: list[tuple[str | None, ...]] = []
    none = (None,) * len(ACQUISITION_FIELDS)
    for u, r, d in zip(url, referrer, domains):
        if u is None:
            out.append(none)
            continue
        out.append(classify(u, r if isinstance(r, str) else None, () if d is None else d).values())
    return pd.DataFrame(out, columns=list(ACQUISITION_FIELDS))


def is_stale(columns: list[str]) -> Column:
    """The events whose acquisition fields are missing or from another rule than today's."""
    if "source_rule" not in columns:
        return F.lit(True)
    return F.col("source_rule").isNull() | (F.col("source_rule") != F.lit(RULE_VERSION))


def acquisition(url: Column, referrer: Column, domains: Column, where: Column | None = None) -> Column:
    """The struct of ``ACQUISITION_FIELDS`` that ``schemas.sources.classify`` gives, for the
    rows ``where`` holds (null elsewhere).

    Spark evaluates a Python UDF on every row of its input, whatever condition surrounds
    it: the rows not to classify are sent with a null URL, which costs a null in the Arrow
    batch instead of a call of the rule (and keeps the plan's partitioning, unlike a union
    of the two kinds of rows)."""
    if where is not None:
        url = F.when(where, url)
    return _classified(url, referrer, domains)


def with_acquisition(events: DataFrame) -> DataFrame:
    """``events`` with every stale event's acquisition fields (``is_stale``) replaced by the
    current rule's answer from its URL, its referrer and the site's registered domains (a
    ``domains`` column; the page's host only without it), and stamped with the rule.

    A Python UDF's output has no known partitioning: apply this before the shuffle that
    clusters the events, not after."""
    stale = is_stale(events.columns)
    domains = F.col("domains") if "domains" in events.columns else F.lit(None).cast("array<string>")
    stamped = all(name in events.columns for name in ACQUISITION_FIELDS)
    out = events.withColumn(_CLASSIFIED, acquisition(F.col("url"), F.col("referrer"), domains,
                                                     where=stale if stamped else None))
    for name in ACQUISITION_FIELDS:
        fresh = F.when(stale, F.col(_CLASSIFIED)[name]).otherwise(F.col(name)) if stamped else F.col(_CLASSIFIED)[name]
        out = out.withColumn(name, fresh)
    return out.withColumn("source_rule", F.lit(RULE_VERSION)).drop(_CLASSIFIED)


_CLASSIFIED = "_classified"

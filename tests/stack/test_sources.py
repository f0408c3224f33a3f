"""The Spark expression of the referrer source and UTM rule gives the answers of
``schemas.sources`` (the cases of tests/samples.py)."""
from __future__ import annotations

import pytest

from schemas.sources import source_fields
from tests.samples import SOURCE_CASES as CASES
from views.transforms import with_dimensions


def _frame(spark, with_fields: bool):
    rows = [(f"e{i}", url, referrer, *(source_fields(url, referrer).values() if with_fields else (None,) * 4))
            for i, (url, referrer, *_) in enumerate(CASES)]
    return spark.createDataFrame(rows, "event_id string, url string, referrer string, referrer_source string, "
                                       "utm_source string, utm_medium string, utm_campaign string").selectExpr(
        "*", "'s' AS site", "'pageview' AS type", "CAST(NULL AS STRING) AS name", "'/p' AS path")


@pytest.mark.parametrize("with_fields", [False, True], ids=["archived before the collector classified",
                                                            "classified by the collector"])
def test_spark_gives_the_same_answers(spark, with_fields):
    """Events archived without the collector's fields get them from the Spark expression of
    the same rule; events with them keep the collector's values."""
    got = {r["event_id"]: (r["dim_referrer_source"], r["dim_utm_source"], r["dim_utm_medium"], r["dim_utm_campaign"])
           for r in with_dimensions(_frame(spark, with_fields)).collect()}
    want = {f"e{i}": tuple(case[2:]) for i, case in enumerate(CASES)}
    assert got == want

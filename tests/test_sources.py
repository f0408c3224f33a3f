"""The referrer source and UTM rule (``schemas.sources``), and the Spark expression that
applies it to events archived before the collector wrote the fields: same answers."""
from __future__ import annotations

import pytest

from schemas.sources import SOURCE_FIELDS, classify, source_fields

PAGE = "https://shop.test/pricing"
UNTAGGED = ("(none)", "(none)", "(none)")  # utm_source, utm_medium, utm_campaign
# (url, referrer, referrer source, utm_source, utm_medium, utm_campaign)
CASES = [
    (PAGE, None, "direct", *UNTAGGED),
    (PAGE, "", "direct", *UNTAGGED),
    (PAGE, "https://shop.test/", "internal", *UNTAGGED),
    (PAGE, "https://SHOP.test:443/cart", "internal", *UNTAGGED),
    (PAGE, "https://www.google.com/search?q=x", "search", *UNTAGGED),
    (PAGE, "https://www.google.co.uk/", "search", *UNTAGGED),
    (PAGE, "https://duckduckgo.com/", "search", *UNTAGGED),
    (PAGE, "https://notduckduckgo.com/", "other sites", *UNTAGGED),
    (PAGE, "https://t.co/abc", "social", *UNTAGGED),
    (PAGE, "https://old.reddit.com/r/x", "social", *UNTAGGED),
    (PAGE, "https://mastodon.social/@x", "social", *UNTAGGED),
    (PAGE, "https://blog.example.org/post", "other sites", *UNTAGGED),
    (PAGE, "android-app://com.slack/", "other sites", *UNTAGGED),
    (PAGE + "?utm_source=news&utm_medium=email&utm_campaign=bf", "https://www.google.com/",
     "campaign", "news", "email", "bf"),
    (PAGE + "?gclid=abc", None, "campaign", *UNTAGGED),
    (PAGE + "?utm_campaign=spring%20sale&utm_source=a+b", None, "campaign", "a b", "(none)", "spring sale"),
    (PAGE + "?utm_source=first&utm_source=second", None, "campaign", "first", "(none)", "(none)"),
    (PAGE + "?utm_source=&utm_medium=cpc", "https://bing.com/", "search", "(none)", "cpc", "(none)"),
    (PAGE + "?x=1#utm_source=fragment", None, "direct", *UNTAGGED),
    (PAGE + "?xutm_source=no", None, "direct", *UNTAGGED),
]


@pytest.mark.parametrize("url, referrer, source, utm_source, utm_medium, utm_campaign", CASES)
def test_the_rule(url, referrer, source, utm_source, utm_medium, utm_campaign):
    assert classify(url, referrer) == source
    assert source_fields(url, referrer) == {"referrer_source": source, "utm_source": utm_source,
                                             "utm_medium": utm_medium, "utm_campaign": utm_campaign}


def test_fields_are_the_collectors():
    assert set(source_fields(PAGE, None)) == set(SOURCE_FIELDS)


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
    from views.transforms import with_dimensions

    got = {r["event_id"]: (r["dim_referrer_source"], r["dim_utm_source"], r["dim_utm_medium"], r["dim_utm_campaign"])
           for r in with_dimensions(_frame(spark, with_fields)).collect()}
    want = {f"e{i}": tuple(case[2:]) for i, case in enumerate(CASES)}
    assert got == want

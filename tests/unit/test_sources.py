"""The referrer source and UTM rule (``schemas.sources``); the Spark expression that applies
it to events archived before the collector wrote the fields gives the same answers
(tests/stack/test_sources.py)."""
from __future__ import annotations

import pytest

from schemas.sources import SOURCE_FIELDS, classify, source_fields
from tests.samples import PAGE
from tests.samples import SOURCE_CASES as CASES


@pytest.mark.parametrize("url, referrer, source, utm_source, utm_medium, utm_campaign", CASES)
def test_the_rule(url, referrer, source, utm_source, utm_medium, utm_campaign):
    assert classify(url, referrer) == source
    assert source_fields(url, referrer) == {"referrer_source": source, "utm_source": utm_source,
                                             "utm_medium": utm_medium, "utm_campaign": utm_campaign}


def test_fields_are_the_collectors():
    assert set(source_fields(PAGE, None)) == set(SOURCE_FIELDS)

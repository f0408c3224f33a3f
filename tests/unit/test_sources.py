"""The acquisition rule (``schemas.sources``) on the shared table of real cases
(tests/cases/channels.tsv), and the table against an independent restatement of README's
rule (tests/acquisition_reference.py). The stack tests run the same table through Spark
(tests/stack/test_sources.py)."""
from __future__ import annotations

import pytest

from schemas.sources import CHANNELS, RULE_VERSION, SOURCE_FIELDS, classify, source_fields
from tests.acquisition_reference import acquisition as reference
from tests.samples import channel_cases

CASES = channel_cases()
IDS = [f"{i + 2}:{c.note[:40]}" for i, c in enumerate(CASES)]  # the file's line and what the case checks


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_rule(case):
    got = classify(case.url, case.referrer, case.domains)
    assert (got.channel, got.source, got.utm_source, got.utm_medium, got.utm_campaign) == case.expected


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_readme_as_restated_agrees(case):
    assert reference(case.url, case.referrer, case.domains) == case.expected


def test_the_table_covers_every_channel_and_the_edge_cases():
    assert len(CASES) >= 200
    counts = {channel: sum(c.channel == channel for c in CASES) for channel in CHANNELS}
    assert min(counts.values()) >= 3, counts
    referrers = [c.referrer or "" for c in CASES]
    for needle in ("android-app://", "xn--", "яндекс", "about:blank", "mail.google.com", "accounts.google.com",
                   "google.example-blog.com", "www.google.com./"):
        assert any(needle in r for r in referrers), needle
    assert any("UTM_SOURCE" in c.url for c in CASES)
    assert any(c.referrer and "://" not in c.referrer and c.referrer.startswith("www.") for c in CASES)


def test_fields_are_the_collectors():
    fields = source_fields("https://shop.test/", None)
    assert set(fields) == set(SOURCE_FIELDS) and fields["source_rule"] == RULE_VERSION

"""The batch layer's Spark step classifies events as the collector does: the table of real
cases (tests/cases/channels.tsv) through ``views.transforms.with_acquisition``, for events
archived before the collector classified and for events stamped by an older rule; events
stamped by the current rule keep their fields."""
from __future__ import annotations

import pytest

from schemas.sources import RULE_VERSION
from tests.samples import channel_cases
from views.transforms import with_acquisition, with_dimensions

CASES = channel_cases()
FIELDS = ("channel", "source", "utm_source", "utm_medium", "utm_campaign")
STAMPS = {"unstamped": None, "older rule": "1.0123456789", "current rule": RULE_VERSION}


def _frame(spark, stamp: str | None, with_fields: bool = True):
    # Stamped fields hold a value no rule gives: replaced unless the stamp is current.
    rows = [(f"e{i}", "s", "pageview", "/p", None, c.url, c.referrer, list(c.domains),
             *(("kept",) * len(FIELDS) if with_fields else (None,) * len(FIELDS)), stamp)
            for i, c in enumerate(CASES)]
    schema = ("event_id string, site string, type string, path string, name string, url string, referrer string, "
              "domains array<string>, " + ", ".join(f"{f} string" for f in FIELDS) + ", source_rule string")
    return spark.createDataFrame(rows, schema)


def _dimensions(frame) -> dict[str, tuple]:
    out = with_dimensions(with_acquisition(frame))
    return {r["event_id"]: tuple(r[f"dim_{f}"] for f in FIELDS) for r in out.collect()}


@pytest.mark.parametrize("stamp", ["unstamped", "older rule"])
def test_spark_classifies_stale_events_as_the_table_says(spark, stamp):
    got = _dimensions(_frame(spark, STAMPS[stamp], with_fields=stamp != "unstamped"))
    want = {f"e{i}": c.expected for i, c in enumerate(CASES)}
    wrong = {k: (got[k], want[k], CASES[int(k[1:])].note) for k in want if got[k] != want[k]}
    assert not wrong


def test_events_of_the_current_rule_keep_their_fields(spark):
    got = _dimensions(_frame(spark, RULE_VERSION))
    assert set(got.values()) == {("kept",) * len(FIELDS)}


def test_archives_without_the_fields_at_all(spark):
    """Archives from before the collector classified have no such columns."""
    frame = _frame(spark, None).drop(*FIELDS, "source_rule")
    got = _dimensions(frame)
    assert got == {f"e{i}": c.expected for i, c in enumerate(CASES)}

"""A day's batch views are checked before the boundary moves (``batch_layer.validation``)."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from batch_layer.validation import DayValidator, ValidationError

DAY = date(2026, 11, 2)


def event_row(site, bucket, view="traffic", dim="", pageviews=1, events=2, visitors=1, clicks=0, impressions=0):
    return {"site": site, "view_name": view, "dim": dim, "bucket": bucket, "pageviews": pageviews, "events": events,
            "visitors": visitors, "clicks": clicks, "impressions": impressions, "visitors_sketch": b""}


def fed(hours, days, zones=None):
    v = DayValidator(DAY, zones or {"a": "UTC"})
    v(hours, "hour", "event")
    v(days, "day", "event")
    return v


H9, H10 = datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 2, 10, tzinfo=UTC)
D = datetime(2026, 11, 2, tzinfo=UTC)


def test_consistent_views_pass():
    v = fed([event_row("a", H9), event_row("a", H10, events=3)], [event_row("a", D, pageviews=2, events=5, visitors=1)])
    assert v.problems(["a"]) == []
    v.check(["a"])


def test_hours_that_do_not_add_up_to_the_day_fail_and_name_the_row():
    v = fed([event_row("a", H9, view="page", dim="/x")], [event_row("a", D), event_row("a", D, view="page", dim="/x",
                                                                                           events=7)])
    problems = v.problems(["a"])
    assert any("page='/x'" in p and "the day says" in p for p in problems)
    assert any("traffic" in p for p in problems)  # the total has a day row but no hour
    with pytest.raises(ValidationError, match="the boundary stays"):
        v.check(["a"])


def test_negative_counts_and_more_visitors_than_events_fail():
    v = DayValidator(DAY, {"a": "UTC"})
    v([event_row("a", datetime(2026, 11, 2, 9, 5, tzinfo=UTC), events=-1, visitors=0)], "minute", "event")
    v([event_row("a", datetime(2026, 11, 2, 9, 6, tzinfo=UTC), events=1, visitors=2)], "minute", "event")
    problems = v.problems([])
    assert any("negative" in p for p in problems) and any("2 visitors from 1 events" in p for p in problems)


def test_a_site_with_events_but_no_day_row_fails():
    v = fed([], [])
    assert v.problems(["a"]) == [f"a had events on {DAY} but no day total row"]


def test_hours_go_to_the_local_day_of_the_site():
    # Tokyo's 2 November starts at 15:00 UTC on the 1st: that hour is the 2nd's there.
    tokyo_hour = datetime(2026, 11, 1, 15, tzinfo=UTC)
    v = fed([event_row("t", tokyo_hour)], [event_row("t", tokyo_hour)], zones={"t": "Asia/Tokyo"})
    assert v.problems(["t"]) == []

"""Goals, report filters and comparison ranges, on tiny inputs (the report arithmetic on
the real store: tests/stack/test_report_arithmetic.py)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from serving_layer.reports import previous_range
from views.filters import FilterError, parse_filters
from views.goals import Goal, path_regex, validate_goal

UTC = timezone.utc


def test_page_goal_patterns():
    assert re.match(path_regex("/blog/*"), "/blog/post")
    assert not re.match(path_regex("/blog/*"), "/blog/2026/post")
    assert re.match(path_regex("/blog/**"), "/blog/2026/post")
    assert not re.match(path_regex("/signup"), "/signup/extra")
    assert re.match(path_regex("/a.b+(c)"), "/a.b+(c)") and not re.match(path_regex("/a.b"), "/axb")
    for bad in (Goal("s", "x", "page", "no-slash"), Goal("s", "", "event", "e"), Goal("s", "x", "visit", "/")):
        try:
            validate_goal(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")


def test_filters_are_read_with_their_operators_and_escapes():
    got = parse_filters(r"page==/pricing;country!=FR;page=@blog;utm_campaign!@sale;prop:plan==a\;b;referrer_source==x")
    assert [(f.dimension, f.op, f.value) for f in got] == [
        ("page", "==", "/pricing"), ("country", "!=", "FR"), ("page", "=@", "blog"), ("utm_campaign", "!@", "sale"),
        ("prop:plan", "==", "a;b"), ("channel", "==", "x")]  # the former dimension name answers as its successor
    assert got[4].matches("a;b") and not got[1].matches("FR") and got[2].matches("/blog/x") and got[3].matches("x")
    assert str(got[4]) == r"prop:plan==a\;b" and parse_filters(str(got[4])) == (got[4],)
    assert parse_filters("") == () and parse_filters(None) == ()
    for bad, needle in [("planet==Mars", "unknown dimension"), ("page", "no operator"),
                        (";".join(["page==/"] * 9), "at most 8"), ("page==" + "x" * 600, "at most 512")]:
        with pytest.raises(FilterError, match=needle):
            parse_filters(bad)


def test_the_range_to_compare_with():
    paris = "Europe/Paris"

    def local(*args: int) -> datetime:
        return datetime(*args, tzinfo=ZoneInfo(paris)).astimezone(UTC)

    # Whole days stay whole days, across the October DST change (a 25-hour day).
    assert previous_range(local(2026, 10, 26), local(2026, 10, 28), paris, "previous_period") == \
        (local(2026, 10, 24), local(2026, 10, 26))
    start, end = datetime(2026, 11, 21, 10, 30, tzinfo=UTC), datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert previous_range(start, end, paris, "previous_period") == (start - timedelta(minutes=90), start)
    assert previous_range(local(2028, 2, 29), local(2028, 3, 1), paris, "previous_year") == \
        (local(2027, 2, 28), local(2027, 3, 1))

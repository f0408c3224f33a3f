"""The boundary stays honest: it passes a day only if every day since the site's first was
computed; the days missing are gaps, which reports over them list and do not call final."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from serving_layer.freshness import SpeedFreshness, freshness
from serving_layer.reports import breakdown_report, traffic_report
from store.boundary import day_spans, first_day, settled

UTC = timezone.utc
D = date(2026, 10, 5)


def days(*offsets: int) -> set[date]:
    return {D + timedelta(days=n) for n in offsets}


def test_contiguous_days_move_the_boundary_to_the_last():
    assert settled(D, days(0, 1, 2)) == (D + timedelta(days=2), ())


def test_a_day_computed_after_a_gap_does_not_move_it():
    through, gaps = settled(D, days(0, 1, 3, 4))
    assert through == D + timedelta(days=1)
    assert gaps == tuple(sorted(days(2)))


def test_computing_the_gap_day_moves_it_to_the_end_of_the_contiguous_run():
    assert settled(D, days(0, 1, 2, 3, 4)) == (D + timedelta(days=4), ())


def test_a_missing_first_day_is_a_gap_and_nothing_since_is_passed():
    assert settled(D, days(1, 2)) == (None, (D,))
    # A day computed before the site's first (no events, or it would be the first) may be passed.
    assert settled(D, days(-3, 1)) == (D - timedelta(days=3), (D,))


def test_days_before_the_first_need_nothing_before_them():
    assert settled(D, days(-2)) == (D - timedelta(days=2), ())
    assert settled(D, set()) == (None, ())


def test_the_first_day_is_registration_or_the_first_day_with_events():
    registered = D + timedelta(days=3)
    computed = {D: 0, D + timedelta(days=1): 12, D + timedelta(days=4): 5}
    assert first_day(registered, computed) == D + timedelta(days=1)  # events archived before registration
    assert first_day(D - timedelta(days=1), computed) == D - timedelta(days=1)
    assert first_day(None, {D: 0, D + timedelta(days=2): 0}) == D
    assert first_day(None, {}) is None


def test_gaps_read_as_spans_in_the_log():
    assert day_spans(days(2, 3, 4, 7, 9, 10)) == \
        "2026-10-07..2026-10-09 (3 days), 2026-10-12, 2026-10-14..2026-10-15 (2 days)"
    assert day_spans([]) == ""


class Views:
    """A store with a boundary, gaps, and no rows: what the facade makes of them."""

    def __init__(self, boundary: datetime | None, gaps: tuple[date, ...]) -> None:
        self._boundary, self._gaps = boundary, gaps

    def boundary(self, site: str) -> datetime | None:
        return self._boundary

    def gaps(self, site: str) -> tuple[date, ...]:
        return self._gaps

    def rows(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


def at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def test_a_report_lists_the_gaps_of_its_range_and_no_bucket_in_them_is_final():
    gap = D + timedelta(days=2)
    store = Views(at(D + timedelta(days=2)), (gap, D + timedelta(days=9)))
    report = traffic_report(store, "s", ["pageviews"], at(D), at(D + timedelta(days=4)), "day")  # type: ignore[arg-type]
    assert report["gaps"] == [gap.isoformat()]
    assert [b["final"] for b in report["buckets"]] == [True, True, False, False]
    hours = traffic_report(store, "s", ["pageviews"], at(gap), at(gap) + timedelta(hours=3), "hour")  # type: ignore[arg-type]
    assert hours["gaps"] == [gap.isoformat()] and not any(b["final"] for b in hours["buckets"])
    clear = traffic_report(store, "s", ["pageviews"], at(D), at(gap), "day")  # type: ignore[arg-type]
    assert clear["gaps"] == [] and all(b["final"] for b in clear["buckets"])


def test_a_gap_before_the_boundary_is_not_final_either():
    """A boundary that never moves back can be past a gap (a backfill found events before the
    days computed so far): the gap's buckets come from batch views the boundary never waited for."""
    gap = D + timedelta(days=1)
    store = Views(at(D + timedelta(days=3)), (gap,))
    report = traffic_report(store, "s", ["pageviews"], at(D), at(D + timedelta(days=3)), "day",  # type: ignore[arg-type]
                            compare="previous_period")
    assert [b["final"] for b in report["buckets"]] == [True, False, True]
    assert report["gaps"] == [gap.isoformat()] and report["comparison"]["gaps"] == []
    breakdown = breakdown_report(store, "s", "page", ["pageviews"], at(D), at(D + timedelta(days=3)))  # type: ignore[arg-type]
    assert breakdown["gaps"] == [gap.isoformat()] and breakdown["final"] is False
    assert breakdown_report(store, "s", "page", ["pageviews"], at(gap + timedelta(days=1)),  # type: ignore[arg-type]
                            at(D + timedelta(days=3)))["final"] is True


def test_the_freshness_names_the_sites_gaps():
    speed = SpeedFreshness(None, 0, 0.0, False, None, None, None, datetime(2026, 10, 9, tzinfo=UTC))
    fresh = freshness(at(D), speed, UTC, (D + timedelta(days=1),))
    assert fresh["batch_boundary"] == "2026-10-05T00:00:00+00:00" and fresh["batch_gaps"] == ["2026-10-06"]

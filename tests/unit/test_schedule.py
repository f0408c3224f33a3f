"""Which site-days a reprocessing recomputes (``batch_layer.schedule.plan_range``)."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from batch_layer.schedule import MAX_DAYS, PlanError, plan_range

ZONES = {"paris": "Europe/Paris", "tokyo": "Asia/Tokyo", "la": "America/Los_Angeles"}


def test_every_site_by_default_each_day_where_it_has_ended():
    # 2026-11-03 08:00 UTC: the 2nd has ended (+ 15 min) in Tokyo and Paris, not yet in Los Angeles.
    now = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    ready, waiting = plan_range(ZONES, date(2026, 11, 1), date(2026, 11, 2), [], now)
    assert ready == {date(2026, 11, 1): ["la", "paris", "tokyo"], date(2026, 11, 2): ["paris", "tokyo"]}
    assert waiting == [(date(2026, 11, 2), ["la"])]


def test_only_the_sites_asked():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    ready, waiting = plan_range(ZONES, date(2026, 11, 1), date(2026, 11, 1), ["tokyo"], now)
    assert ready == {date(2026, 11, 1): ["tokyo"]} and waiting == []


@pytest.mark.parametrize("first, last, sites, message", [
    (date(2026, 11, 2), date(2026, 11, 1), [], "ends (2026-11-01) before it starts"),
    (date(2025, 1, 1), date(2026, 11, 1), [], f"at most {MAX_DAYS}"),
    (date(2026, 11, 1), date(2026, 11, 1), ["tokyo", "nope"], "no such site: nope"),
])
def test_a_range_or_site_that_cannot_be_is_refused_with_its_reason(first, last, sites, message):
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_range(ZONES, first, last, sites, datetime(2026, 12, 1, tzinfo=UTC))


def test_the_late_data_dags_site_days_reach_the_job_intact():
    from batch_layer.late_data import site_days_arg  # noqa: PLC0415 -- the job's module loads PySpark's API
    from batch_layer.reprocess import parse_args  # noqa: PLC0415

    args = parse_args(["--site-days=2026-11-02:b,a;2026-11-03:c"])
    assert args.site_days == {date(2026, 11, 2): ["a", "b"], date(2026, 11, 3): ["c"]}
    assert parse_args([f"--site-days={site_days_arg(args.site_days)}"]).site_days == args.site_days
    with pytest.raises(SystemExit):
        parse_args([])  # a range or site-days

"""The boundary stays honest, on the real stack: a day computed after a gap (a day never
computed since the site's first) leaves the boundary where it was; the batch job's log and
the API name the gap, and the report over it calls no bucket from the gap on final;
computing the gap day moves the boundary to the end of the contiguous run."""
from __future__ import annotations

import json
import logging
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from batch_layer.job import run_day
from infra.master import append_events
from speed_layer.queries import archive_frame
from store.boundary import Boundaries
from tools.synthetic import archived_event

pytestmark = pytest.mark.stack
UTC = timezone.utc
TZ = "Europe/Paris"
D0 = date(2026, 9, 7)
DAYS = [D0 + timedelta(days=i) for i in range(4)]
PER_DAY = [3, 4, 5, 6]


def archive(spark, master: Path, events: list[dict]) -> None:
    """Append events to the master dataset."""
    append_events(archive_frame(spark.createDataFrame([(json.dumps(e),) for e in events], "value STRING")), master)


def midnight(day: date) -> datetime:
    """The start of ``day`` in the site's zone, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(TZ)).astimezone(UTC)


@pytest.fixture(scope="module")
def world(spark, cassandra, stack, registry, tmp_path_factory):
    """A site registered today with events archived on four earlier days, none computed."""
    site = f"gaps-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["x.test"], TZ)
    master = tmp_path_factory.mktemp("gaps") / "master"
    archive(spark, master, [archived_event(site, midnight(day) + timedelta(hours=10, minutes=i), f"v{i}")
                            for day, n in zip(DAYS, PER_DAY) for i in range(n)])
    return {"site": site, "master": master}


@pytest.fixture(scope="module")
def client(serving_app, world):
    # Boundaries are read back right after a batch run: no cached site state.
    return serving_app(paths={"master_dir": world["master"]}, serving={"meta_ttl_s": 0})


def _report(client, site: str) -> dict:
    r = client.get(f"/api/v1/sites/{site}/report", query_string={
        "from": DAYS[0].isoformat(), "to": DAYS[-1].isoformat(), "granularity": "day", "metrics": "pageviews"})
    assert r.status_code == 200, r.text
    return r.get_json()


def test_a_gap_holds_the_boundary_until_it_is_computed(spark, cassandra, stack, world, client, caplog):
    site, master, ks = world["site"], str(world["master"]), stack.cassandra.keyspace
    boundaries = Boundaries(cassandra, ks)
    for day in DAYS[:2]:
        run_day(spark, cassandra, ks, master, day, {site: TZ})
    state = boundaries.state(site)
    assert (state.boundary, state.gaps) == (midnight(DAYS[2]), ())

    # The fourth day, computed with the third never computed: the boundary stays.
    with caplog.at_level(logging.WARNING, logger="batch_layer.job"):
        assert run_day(spark, cassandra, ks, master, DAYS[3], {site: TZ}) == {site: PER_DAY[3]}
    state = boundaries.state(site)
    assert state.boundary == midnight(DAYS[2]) and state.gaps == (DAYS[2],)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and site in r.getMessage()]
    assert warned == [f"{DAYS[3]}: gap in site {site}: no batch run has computed {DAYS[2]}; its batch boundary "
                      f"cannot pass it and is at {midnight(DAYS[2]).isoformat()}"]

    report = _report(client, site)
    assert report["gaps"] == [DAYS[2].isoformat()]
    assert report["boundary"] == midnight(DAYS[2]).astimezone(ZoneInfo(TZ)).isoformat()
    assert report["freshness"]["batch_gaps"] == [DAYS[2].isoformat()]
    assert [b["final"] for b in report["buckets"]] == [True, True, False, False]
    # Before the boundary, the batch views; after it, the speed views (none for these days).
    assert [b["pageviews"] for b in report["buckets"]] == [*PER_DAY[:2], 0, 0]
    r = client.get(f"/api/v1/sites/{site}/breakdown", query_string={
        "dimension": "page", "from": DAYS[0].isoformat(), "to": DAYS[1].isoformat()})
    assert r.status_code == 200 and r.get_json()["gaps"] == [] and r.get_json()["final"] is True

    # The gap day computed (a reprocess): the boundary jumps to the end of the contiguous run.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="batch_layer.job"):
        run_day(spark, cassandra, ks, master, DAYS[2], {site: TZ})
    assert not [r for r in caplog.records if site in r.getMessage()]
    state = boundaries.state(site)
    assert (state.boundary, state.gaps) == (midnight(DAYS[3] + timedelta(days=1)), ())
    report = _report(client, site)
    assert report["gaps"] == [] and report["freshness"]["batch_gaps"] == []
    assert [b["final"] for b in report["buckets"]] == [True] * 4
    assert [b["pageviews"] for b in report["buckets"]] == PER_DAY


def test_a_day_before_the_site_had_events_needs_nothing_before_it(spark, cassandra, stack, registry, tmp_path):
    """A site registered today, its yesterday computed (no events): nothing since its first
    day (today) is missing, so the boundary passes yesterday, as before gaps were counted."""
    site = f"gaps-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["x.test"], "UTC")
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    run_day(spark, cassandra, stack.cassandra.keyspace, str(tmp_path / "master"), yesterday, {site: "UTC"})
    state = Boundaries(cassandra, stack.cassandra.keyspace).state(site)
    assert state.boundary == datetime(*(yesterday + timedelta(days=1)).timetuple()[:3], tzinfo=UTC)
    assert state.gaps == ()


def test_the_days_computed_before_the_table_existed_are_copied_once(cassandra, stack):
    """`stack up` fills batch_days from batch_runs when it is new, so that an upgrade does not
    turn every earlier day into a gap."""
    ks = f"gaps_{uuid.uuid4().hex[:8]}"
    cassandra.execute(f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}")
    try:
        cassandra.execute(f"CREATE TABLE {ks}.batch_runs (day date, site text, events bigint, duplicates bigint, "
                          "finished_at timestamp, PRIMARY KEY (day, site))")
        cassandra.execute(f"CREATE TABLE {ks}.batch_days (site text, day date, events bigint, finished_at timestamp, "
                          "PRIMARY KEY (site, day))")
        at = datetime(2026, 9, 8, 3, tzinfo=UTC)
        for day, site, events in ((D0, "a", 5), (D0, "b", 0), (DAYS[1], "a", 7)):
            cassandra.execute(f"INSERT INTO {ks}.batch_runs (day, site, events, duplicates, finished_at) "
                              "VALUES (%s, %s, %s, 0, %s)", (day, site, events, at))
        boundaries = Boundaries(cassandra, ks)
        assert boundaries.backfill_days() == 3
        assert boundaries.computed_days("a") == {D0: 5, DAYS[1]: 7}
        assert boundaries.computed_days("b") == {D0: 0}
        assert boundaries.backfill_days() == 0  # once: afterwards record_run writes both
    finally:
        cassandra.execute(f"DROP KEYSPACE {ks}", timeout=60)

"""A batch job killed after it wrote some of a day's views: the boundary stays where it was,
readers' answers do not change (they keep reading the speed views for that day), and the
retry completes the day."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from batch_layer.job import run_day
from infra.master import append_events
from speed_layer.queries import archive_frame
from store.views import ViewWrites
from tests.helpers import wait_for
from tests.stack.test_reprocess import day_totals, reference
from tools.synthetic import archived_event

TODAY = datetime.now(UTC).date()
BEFORE, DAY = TODAY - timedelta(days=3), TODAY - timedelta(days=2)


def _speed_minute(cassandra, ks: str, site: str, bucket: datetime, pageviews: int) -> None:
    """A speed-view minute, what readers see of a day the batch layer has not computed."""
    row = {"site": site, "bucket": bucket, "pageviews": pageviews, "events": pageviews, "clicks": 0, "impressions": 0,
           "visitors": 1, "visitors_sketch": None}
    ViewWrites(cassandra, ks).write("speed_views", "event", "minute", [row], datetime.now(UTC))


def _answer(api, site: str) -> dict:
    answer = api.get(f"/api/v1/sites/{site}/report?from={BEFORE}&to={DAY}&granularity=day").get_json()
    return {k: answer[k] for k in ("boundary", "buckets", "totals", "gaps")}


def _batch_minutes(cassandra, ks: str, site: str) -> int:
    return len(list(cassandra.execute(
        f"SELECT bucket FROM {ks}.batch_views WHERE site=%s AND view_name='traffic' AND granularity='minute' "
        "AND period=%s", (site, DAY.isoformat()))))


def test_a_job_killed_mid_day_changes_nothing_readers_see_and_its_retry_completes_the_day(
        stack, spark, cassandra, registry, serving_app, tmp_path):
    ks = stack.cassandra.keyspace
    site = f"killed-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["x.test"], "UTC")
    events = [archived_event(site, datetime(d.year, d.month, d.day, h, m, tzinfo=UTC), f"v{m % 9}",
                             path=f"/p{m % 5}") for d in (BEFORE, DAY) for h in range(24) for m in range(0, 60, 6)]
    master = tmp_path / "master"
    append_events(archive_frame(spark.createDataFrame([(json.dumps(e),) for e in events], "value STRING")), master)
    run_day(spark, cassandra, ks, str(master), BEFORE, {site: "UTC"})
    _speed_minute(cassandra, ks, site, datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC), 7)
    api = serving_app(paths={"master_dir": master})
    seen = _answer(api, site)
    assert seen["buckets"][1]["pageviews"] == 7 and not seen["buckets"][1]["final"]

    # The batch job of DAY, killed (its JVM with it) once it has written some of the day's views.
    job = subprocess.Popen([sys.executable, "-m", "batch_layer.reprocess", "--first", DAY.isoformat(),
                            "--last", DAY.isoformat(), f"--sites={site}"],
                           env={**os.environ, "PARALLAX_MASTER_DIR": str(master)}, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("the job to write some of the day's views", lambda: _batch_minutes(cassandra, ks, site) > 0,
                 timeout=300, interval=0.1)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=30)
    time.sleep(1)
    assert _batch_minutes(cassandra, ks, site) > 0  # it did write
    assert day_totals(cassandra, ks, site, "UTC", DAY) is None  # not the whole day
    boundary = cassandra.execute(f"SELECT boundary FROM {ks}.batch_boundary WHERE site=%s", (site,)).one().boundary
    assert boundary.replace(tzinfo=UTC) == datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)  # BEFORE's end
    assert not list(cassandra.execute(f"SELECT day FROM {ks}.batch_days WHERE site=%s AND day=%s", (site, DAY)))
    assert _answer(api, site) == seen

    # The retry completes the day; the boundary moves past it.
    run_day(spark, cassandra, ks, str(master), DAY, {site: "UTC"})
    assert day_totals(cassandra, ks, site, "UTC", DAY) == reference(events, "UTC")[DAY]
    after = _answer(api, site)
    assert after["buckets"][1]["final"] and after["buckets"][1]["pageviews"] == reference(events, "UTC")[DAY]["pageviews"]

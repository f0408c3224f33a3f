"""The system's own alarms, each produced for real on the stack and notified to the admins
(and to a site's members where one site is concerned) by `parallax alerting`: a recomputed
day's drift over the threshold, a failed `parallax_nightly` run (dag.test), and the speed
layer stalled while events keep arriving (it is stopped, then started again)."""
from __future__ import annotations

import os
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from batch_layer.drift import record_drift
from infra.proc import CliProcess, free_port
from serving_layer.alerting.alarms import STATE_KEY
from store.accounts import generate_password
from store.alerts import AlertRules
from store.views import BATCH_TABLE, SPEED_TABLE, ViewWrites
from tests.helpers import sketch, wait_for
from tools.synthetic import tracker_event

pytestmark = pytest.mark.stack
UTC = timezone.utc
REPO = Path(__file__).resolve().parents[2]


COLLECTOR_PORT = free_port()  # the collector the alarms watch (the refusing test starts it)


@pytest.fixture(scope="module")
def alarms(stack, log_dir) -> Any:
    svc = CliProcess("alarms", ["alerting", "--no-delivery"], log_dir / "alarms.log", env={
        "PARALLAX_ALERTS_TICK_S": "2", "PARALLAX_ALERTS_SPEED_STALLED_AFTER_S": "10",
        "PARALLAX_ALERTS_COLLECTOR_REFUSING_AFTER_S": "5", "PARALLAX_COLLECTOR_PORT": str(COLLECTOR_PORT)}).start()
    yield svc
    svc.stop()


def _notified(api: requests.Session, serving_url: str, kind: str, since: datetime, **values: Any) -> list[dict]:
    got = api.get(f"{serving_url}/api/v1/me/notifications", params={"limit": 500}, timeout=30).json()
    return [n for n in got["notifications"] if n["kind"] == kind and datetime.fromisoformat(n["created_at"]) >= since
            and all(n["values"].get(k) == v for k, v in values.items())]


def test_a_drift_over_the_threshold_is_notified(cassandra, stack, registry, accounts, serving_url, api, alarms):
    site, day = f"driftalarm-{uuid.uuid4().hex[:8]}", date(2026, 3, 4)
    registry.add_site(site, ["example.test"], "UTC")
    member = f"member-{uuid.uuid4().hex[:8]}@example.test"
    accounts.add_user(member, generate_password())
    accounts.grant(member, site, "viewer")
    start, now = datetime(2026, 3, 4, tzinfo=UTC), datetime.now(UTC)

    def minute(at: datetime, pageviews: int) -> dict:
        return {"site": site, "bucket": at, "pageviews": pageviews, "events": pageviews, "visitors": 1,
                "visitors_sketch": sketch(["a"]), "clicks": 0, "impressions": 0}

    writes = ViewWrites(cassandra, stack.cassandra.keyspace)
    writes.write(SPEED_TABLE, "event", "minute", [minute(start, 10)], now)
    writes.write(BATCH_TABLE, "event", "minute", [minute(start, 12)], now)  # the live figure was 1/6 short
    record_drift(cassandra, stack.cassandra.keyspace, day, {site: "UTC"}, threshold=0.05)

    found = wait_for("the drift alarm", lambda: [n for n in _notified(api, serving_url, "system.drift", now)
                                                 if n["site"] == site], timeout=60)
    assert found[0]["values"]["measures"]["pageviews"] == {"speed": 10, "batch": 12, "relative": pytest.approx(-0.1667)}
    assert found[0]["link"] == f"/api/v1/sites/{site}/drift"
    # A member of the site is told too (live, in their centre).
    mine = accounts.create_token(member, "t")[1]
    theirs = requests.get(f"{serving_url}/api/v1/me/notifications", headers={"Authorization": f"Bearer {mine}"},
                          timeout=30).json()["notifications"]
    assert [n["kind"] for n in theirs] == ["system.drift"]
    # Under the threshold: no alarm.
    record_drift(cassandra, stack.cassandra.keyspace, day, {site: "UTC"}, threshold=0.5)
    time.sleep(5)  # two ticks and more
    assert len([n for n in _notified(api, serving_url, "system.drift", now) if n["site"] == site]) == 1


def test_a_failed_batch_run_is_notified(stack, airflow_db, registry, serving_url, api, alarms, tmp_path):
    """A run of parallax_nightly whose job fails (the master dataset's log holds a commit
    that is not one): the DAG's failure callback records it, the alarms tell the admins."""
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415 -- after the session's Airflow settings

    registry.add_site(f"batchfail-{uuid.uuid4().hex[:8]}", ["example.test"], "UTC")
    since = datetime.now(UTC)
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("parallax_nightly")
    dag.get_task("daily_views").retries = 0  # fail for good at once (the DAG retries twice, 5 minutes apart)
    day = (since - timedelta(days=2)).date()
    broken = tmp_path / "master"
    (broken / "_delta_log").mkdir(parents=True)
    (broken / "_delta_log" / f"{0:020}.json").write_text("not a Delta commit at all")
    saved = os.environ["PARALLAX_MASTER_DIR"]
    os.environ["PARALLAX_MASTER_DIR"] = str(broken)
    try:
        run = dag.test(run_conf={"day": day.isoformat()})
    finally:
        os.environ["PARALLAX_MASTER_DIR"] = saved
    assert "failed" in str(run.state).lower(), run.state
    found = wait_for("the failed-run alarm", lambda: _notified(api, serving_url, "system.batch_failed", since,
                                                                 dag_id="parallax_nightly", run_id=run.run_id),
                     timeout=60)
    assert found[0]["values"]["task_id"] == "daily_views" and found[0]["site"] == ""


def test_the_speed_layer_stalled_is_notified_and_its_end(stack, cassandra, speed_layer, collector_url, serving_url,
                                                          api, alarms, new_site):
    site = new_site("stall")
    rules = AlertRules(cassandra, stack.cassandra.keyspace)
    # First the speed layer running and caught up (an episode of an earlier stop has ended).
    wait_for("no stalled episode", lambda: not rules.state(STATE_KEY, "system:speed_stalled").episode.firing,
             timeout=180, interval=2)
    since = datetime.now(UTC)
    speed_layer.stop()
    try:
        def send() -> bool:
            event = tracker_event(int(datetime.now(UTC).timestamp() * 1000), "https://example.test/", "pageview")
            r = requests.post(f"{collector_url}/api/collect", json={"site": site, "events": [event]}, timeout=30)
            return r.status_code == 202 and bool(_notified(api, serving_url, "system.speed_stalled", since))

        started = wait_for("the stalled alarm", send, timeout=120, interval=2)
    finally:
        speed_layer.start()
    assert started
    ended = wait_for("the stalled alarm's end", lambda: [n for n in _notified(
        api, serving_url, "system.speed_stalled", since) if n["title"].endswith("ended")], timeout=240, interval=3)
    kinds = [n["title"] for n in _notified(api, serving_url, "system.speed_stalled", since)]
    assert sorted(kinds) == ["The speed layer has stalled: ended", "The speed layer has stalled: started"], kinds
    assert ended[0]["values"]["stalled_since"] is None


def test_a_collector_refusing_events_is_notified_and_its_end(stack, serving_url, api, alarms, log_dir, new_site):
    """A collector that cannot reach Kafka (its brokers' address is wrong) refuses every
    event with a 503: after the configured time, an alarm; started again with the right
    address, the alarm's end."""
    site = new_site("refusing")
    since = datetime.now(UTC)
    broken = CliProcess("collector-no-kafka", ["collect", "--port", str(COLLECTOR_PORT)],
                        log_dir / "collector-no-kafka.log", env={"PARALLAX_KAFKA_BOOTSTRAP": "127.0.0.1:1"}).start()
    url = f"http://127.0.0.1:{COLLECTOR_PORT}"
    try:
        wait_for("the collector", lambda: requests.get(f"{url}/health", timeout=5).status_code == 503, timeout=60)
        refused = requests.post(f"{url}/api/collect", json={"site": site, "events": [tracker_event()]}, timeout=30)
        assert refused.status_code == 503
        started = wait_for("the refusing alarm", lambda: _notified(api, serving_url, "system.collector_refusing",
                                                                     since), timeout=60)
        assert started[0]["values"]["kafka"] == "unreachable"
    finally:
        broken.stop()
    healthy = CliProcess("collector-healthy", ["collect", "--port", str(COLLECTOR_PORT)],
                         log_dir / "collector-healthy.log").start()
    try:
        wait_for("the alarm's end", lambda: [n for n in _notified(api, serving_url, "system.collector_refusing", since)
                                             if n["title"].endswith("ended")], timeout=90)
    finally:
        healthy.stop()
    titles = sorted(n["title"] for n in _notified(api, serving_url, "system.collector_refusing", since))
    assert titles == ["The collector is refusing events: ended", "The collector is refusing events: started"]

"""The late-data DAG, run by `dag.test()` on the real stack: events committed after their
day was computed are found from the master dataset's commit log; a recent day is recomputed
by itself and then equals an independent count of all its events; an older one is only
counted and shown, until a reprocess run takes it in; a second run changes nothing."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batch_layer.job import run_day
from infra.master import append_events
from speed_layer.queries import archive_frame
from tests.stack.test_reprocess import day_totals, master_dir, reference
from tools.synthetic import archived_event

REPO = Path(__file__).resolve().parents[2]
TODAY = datetime.now(UTC).date()
RECENT, OLD = TODAY - timedelta(days=3), TODAY - timedelta(days=10)  # the limit is 7 days


def _at(day, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _archive(spark, master, events) -> None:
    append_events(archive_frame(spark.createDataFrame([(json.dumps(e),) for e in events], "value STRING")), master)


def _late_dag():
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415 -- after the session's Airflow settings

    return DagBag(dag_folder=str(REPO / "dags")).get_dag("parallax_late_data")


def test_late_events_are_found_counted_and_folded_in(stack, spark, cassandra, registry, airflow_db, serving_app,
                                                     tmp_path):
    ks = stack.cassandra.keyspace
    site = f"late-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["x.test"], "UTC")
    master = tmp_path / "master"
    on_time = [archived_event(site, _at(day, h, 5), f"v{h}") for day in (OLD, RECENT) for h in range(0, 24, 4)]
    _archive(spark, master, on_time)
    for day in (OLD, RECENT):
        run_day(spark, cassandra, ks, str(master), day, {site: "UTC"})
    assert day_totals(cassandra, ks, site, "UTC", RECENT)["events"] == 6

    # Late: after both days were computed, events of each (and one of today, not late).
    late = [archived_event(site, _at(RECENT, 9, m), "late1", path="/late") for m in range(5)]
    late += [archived_event(site, _at(OLD, 13, m), "late2") for m in range(3)]
    _archive(spark, master, late + [archived_event(site, datetime.now(UTC), "today")])

    dag = _late_dag()
    with master_dir(master):
        run = dag.test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert "success" in states["find_late"] and "success" in states["recompute"], states
    everything = on_time + late
    assert day_totals(cassandra, ks, site, "UTC", RECENT) == reference(everything, "UTC")[RECENT]
    assert day_totals(cassandra, ks, site, "UTC", OLD) == reference(on_time, "UTC")[OLD]  # too old: left

    api = serving_app(paths={"master_dir": master})
    answer = api.get(f"/api/v1/sites/{site}/late-events").get_json()
    assert answer["limit_days"] == 7
    assert [(d["day"], d["events"], d["status"]) for d in answer["days"]] == [(OLD.isoformat(), 3, "too_old")]
    metrics = api.get("/api/v1/metrics").get_data(as_text=True)
    assert f'parallax_late_events{{site="{site}",status="too_old"}} 3.0' in metrics
    assert f'parallax_late_events{{site="{site}",status="recomputing"}} 0.0' in metrics

    # Nothing new: the run stops at find_late, the views stay.
    before = day_totals(cassandra, ks, site, "UTC", RECENT)
    with master_dir(master):
        again = dag.test()
    states = {ti.task_id: str(ti.state) for ti in again.get_task_instances()}
    assert "success" in states["find_late"] and "skipped" in states["recompute"], states
    assert day_totals(cassandra, ks, site, "UTC", RECENT) == before

    # A reprocess of the old day (what parallax_reprocess runs) takes its late events in.
    run_day(spark, cassandra, ks, str(master), OLD, {site: "UTC"})
    assert day_totals(cassandra, ks, site, "UTC", OLD) == reference(everything, "UTC")[OLD]
    assert api.get(f"/api/v1/sites/{site}/late-events").get_json()["days"] == []

"""The compaction DAG, run by `dag.test()` with spark-submit on the real stack, beside the
session's running speed layer: a date partition is compacted while the archive query keeps
appending events of that date (sent through the collector meanwhile). No event is lost or
doubled (count and checksum of the ids, the events written meanwhile accounted for by their
own ids), the partition has fewer files, the batch views of the day computed from the
compacted table equal an independent count; a second run, once the archive has stopped
writing the day, changes no data, and a third has nothing to do."""
from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pendulum
import pytest
import requests
from deltalake import DeltaTable
from pyspark.sql import functions as F

from batch_layer.compact import Files, compact_partition, partition_files
from batch_layer.compact import parse_args as parse_compact_args
from batch_layer.job import run_day
from batch_layer.migrate_archive import tally
from infra.master import LOG_DIR, read_table
from tests.helpers import wait_for
from tests.stack.test_reprocess import day_totals, reference
from tools.synthetic import tracker_event

REPO = Path(__file__).resolve().parents[2]
# A day of its own in the session's master dataset: no other test writes events of it.
DAY = datetime.now(UTC).date() - timedelta(days=6)
HEADERS = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) ParallaxTest/1.0"}
# The first events of the day: posts each archived before the next, so that the archive
# query (3 s trigger in tests) writes them in as many micro-batches, a file or more each.
FIRST_POSTS, PER_POST = 8, 40


class Sender:
    """Events of DAY for ``site`` posted to the collector; ``sent`` holds those answered 202."""

    def __init__(self, collector_url: str, site: str, seed: int) -> None:
        self.url, self.site, self.rng = f"{collector_url}/api/collect", site, random.Random(seed)
        self.sent: list[dict] = []
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def post(self, n: int) -> None:
        start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
        events = []
        for _ in range(n):
            kind = self.rng.choice(["pageview", "pageview", "click", "custom"])
            extra = {"name": "signup"} if kind == "custom" else {"props": {"element": "cta"}} if kind == "click" else {}
            ts = start + timedelta(seconds=self.rng.randrange(86_400))
            events.append(tracker_event(int(ts.timestamp() * 1000), f"https://compact.test/p{self.rng.randrange(4)}",
                                        kind, visitor_id=f"v{self.rng.randrange(30)}", **extra))
        r = requests.post(self.url, data=json.dumps({"site": self.site, "events": events}), headers=HEADERS,
                          timeout=30)
        assert r.status_code == 202 and r.json()["accepted"] == n, r.text
        self.sent += events

    def start(self, every_s: float, n: int) -> None:
        """Post ``n`` events every ``every_s`` until ``finish``."""
        def loop() -> None:
            try:
                while not self.stop.wait(every_s):
                    self.post(n)
            except BaseException as exc:  # raised by finish(), in the test
                self.error = exc
        self.thread = threading.Thread(target=loop, name="compaction-test-sender", daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=60)
        if self.error is not None:
            raise self.error


def compaction_dag():
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415 -- after the session's Airflow settings

    return DagBag(dag_folder=str(REPO / "dags")).get_dag("parallax_compaction")


def compact(day) -> None:
    run = compaction_dag().test(run_conf={"day": day.isoformat()})
    assert "success" in str(run.state).lower(), run.state


def day_tally(spark, master: str, site: str | None = None) -> tuple[int, int]:
    """The partition's events (of ``site``, or all) and the sum of their ids' hashes."""
    events = read_table(spark, master).where(F.col("date") == F.lit(DAY))
    return tally(events.where(F.col("site") == site) if site else events).get(DAY, (0, 0))


def ids_tally(spark, events: list[dict]) -> tuple[int, int]:
    """The same count and checksum, of the events the test sent (by their own ids)."""
    ids = spark.createDataFrame([(e["event_id"], DAY) for e in events], "event_id STRING, date DATE")
    return tally(ids).get(DAY, (0, 0))


def files_at(master: str, version: int) -> Files:
    return partition_files(master, version).get(DAY, Files())


def day_paths(master: str) -> set[str]:
    """The paths of the partition's files in the table's current version."""
    return set(DeltaTable(master).file_uris(partition_filters=[("date", "=", DAY.isoformat())]))


def commits_after(master: str, version: int) -> list[dict]:
    table = DeltaTable(master)
    newer = table.version() - version
    return sorted((c for c in table.history(newer) if c["version"] > version), key=lambda c: c["version"]) \
        if newer > 0 else []


def actions_of(master: str, version: int) -> list[dict]:
    """The add and remove actions of one commit, from its file in the log."""
    lines = (Path(master) / LOG_DIR / f"{version:020}.json").read_text().splitlines()
    return [a for a in map(json.loads, lines) if "add" in a or "remove" in a]


def wait_archived(spark, master: str, site: str, n: int) -> None:
    wait_for(f"the archive to hold the {n} events sent",
             lambda: read_table(spark, master).where(F.col("site") == site).count() == n, timeout=180, interval=1)


def test_compaction_beside_the_streaming_writer(stack, speed_layer, collector_url, registry, cassandra, spark,
                                                airflow_db):
    master = str(stack.paths.master_dir)
    site = f"cmp-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["compact.test"], "UTC")
    sender = Sender(collector_url, site, seed=20)

    # The partition as the archive query writes it: a micro-batch (a file or more) per post.
    for _ in range(FIRST_POSTS):
        sender.post(PER_POST)
        wait_archived(spark, master, site, len(sender.sent))
    first = list(sender.sent)
    before = day_tally(spark, master)
    assert day_tally(spark, master, site) == ids_tally(spark, first)
    start = DeltaTable(master).version()
    files_before = partition_files(master)[DAY]
    assert files_before.count >= FIRST_POSTS, files_before

    # Compacted while events of the same day keep arriving, and the archive keeps appending them.
    sender.start(every_s=0.5, n=5)
    try:
        compact(DAY)
    finally:
        sender.finish()
    meanwhile = sender.sent[len(first):]
    assert meanwhile
    wait_archived(spark, master, site, len(sender.sent))

    # The compaction's commit: one, it changed no data, and the archive committed beside it.
    (ours,) = [c for c in commits_after(master, start) if c["operation"] == "OPTIMIZE"]
    version = ours["version"]
    appended = [c for c in commits_after(master, start) if c["operation"] == "STREAMING UPDATE"]
    assert ours["readVersion"] < version - 1, "no commit of the archive query between the compaction's read and commit"
    assert any(ours["readVersion"] < c["version"] < version for c in appended)
    assert all(a.get("add", a.get("remove"))["dataChange"] is False for a in actions_of(master, version))
    assert int(ours["operationMetrics"]["numAddedFiles"]) == 1
    assert files_at(master, version).count < files_at(master, version - 1).count
    assert files_at(master, version - 1).count >= files_before.count

    # No event lost or doubled: what was there, plus what was sent meanwhile, by id.
    n_meanwhile, h_meanwhile = ids_tally(spark, meanwhile)
    assert day_tally(spark, master) == (before[0] + n_meanwhile, before[1] + h_meanwhile)
    assert day_tally(spark, master, site) == ids_tally(spark, sender.sent)
    stored = Counter(r["event_id"] for r in read_table(spark, master).where(F.col("site") == site)
                     .select("event_id").collect())
    assert stored == Counter(e["event_id"] for e in sender.sent)

    # The batch views of the day, from the compacted table, equal an independent count.
    ks = stack.cassandra.keyspace
    run_day(spark, cassandra, ks, master, DAY, {site: "UTC"}, stack.spark.session_gap)
    assert day_totals(cassandra, ks, site, "UTC", DAY) == reference(sender.sent, "UTC")[DAY]

    # Again, now that nothing writes: what the archive appended meanwhile is merged in,
    # and no data changes.
    settled = day_tally(spark, master)
    mark = DeltaTable(master).version()
    compact(DAY)
    assert day_tally(spark, master) == settled
    # (The session's archive query may still commit other tests' events: of other days.)
    ours = [c for c in commits_after(master, mark) if c["operation"] != "STREAMING UPDATE"]
    assert {c["operation"] for c in ours} == {"OPTIMIZE", "VACUUM START", "VACUUM END"}, ours
    for c in ours:
        assert all(a.get("add", a.get("remove"))["dataChange"] is False for a in actions_of(master, c["version"]))
    assert partition_files(master)[DAY].count == 1

    # And again (in this process, as the job runs it): nothing to do. The same files, no commit.
    paths, mark = day_paths(master), DeltaTable(master).version()
    assert compact_partition(spark, master, DAY).version is None
    assert day_paths(master) == paths
    assert not [c for c in commits_after(master, mark) if c["operation"] != "STREAMING UPDATE"]
    assert day_tally(spark, master) == settled


@pytest.fixture(scope="module")
def dag(airflow_db):
    return compaction_dag()


def test_compaction_dag_is_daily_with_a_day_for_ops(dag):
    (task,) = dag.tasks
    assert task.task_id == "compact" and task.task_type == "SparkSubmitOperator"
    assert task.application.endswith("batch_layer/compact.py")
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("30 0 * * *", "UTC")
    assert dag.catchup is False and dag.max_active_runs == 1
    schema = dag.params.get_param("day").schema
    assert dag.params["day"] is None and schema["type"] == ["null", "string"] and schema["format"] == "date"
    assert dag.doc_md and dag.default_args["on_failure_callback"].__name__ == "record_failure"


@pytest.mark.parametrize("day, expected", [
    (None, ["--before=2026-12-08"]),
    ("2026-12-01", ["--day=2026-12-01"]),
])
def test_compaction_arguments_for_scheduled_and_manual_runs(dag, day, expected):
    """The daily run compacts the days before its own (its run_after, 00:30 UTC); a manual
    one its `day`; and the job's parser takes exactly what the template renders."""
    (task,) = dag.tasks
    context = {"params": {"day": day},
               "dag_run": SimpleNamespace(run_after=pendulum.datetime(2026, 12, 8, 0, 30, tz="UTC"))}
    rendered = [jinja2.Template(a).render(**context) for a in task.application_args]
    assert rendered == expected
    args = parse_compact_args(rendered)
    assert (str(args.day) if args.day else None, str(args.before) if args.before else None) == \
        ((day, None) if day else (None, "2026-12-08"))

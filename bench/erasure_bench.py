"""Erasure, end to end: a request to erase visitors whose events are spread over several days
of a site's traffic, from the request to the events removed from the master dataset and
every day they were on recomputed, run as the DAG `parallax_erasure` runs it (spark-submit
of `batch_layer/erase.py`, the batch session's conf), without Airflow's own overhead.

    .venv/bin/python -m bench.erasure_bench --events-per-day 1000000 --days 7 --visitors 100

Needs the local stack (`parallax stack up`). Setup, cached under var/bench/ (not committed):
the master dataset of the days (synthetic visits of one UTC site; a visitor's visits fall on
a few days), then the batch views of each day computed by the batch job, before anything
is erased. Each run records a request for visitors drawn at random among those still in
the table (an earlier run's are gone, and the table and views are as its erasure left them:
the same work again), runs the job, checks that none of their events is left and that the
request is done with the events counted before, and prints the phases from the job's log:
the count, the delete, each day's recompute.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from pyspark.sql import functions as F

from batch_layer.job import run_day
from bench.common import machine
from infra.clients import cassandra_session
from infra.master import append_events, read_table
from infra.settings import REPO_ROOT, Settings, load_settings
from infra.spark import SPARK_ENV, get_session, submit_conf
from speed_layer.queries import archive_frame
from store.erasures import DONE, Erasures
from store.registry import Registry
from tools.synthetic.spark import visits

SITE = "bench-erasure"
FIRST = date(2026, 6, 1)  # long ended: every day of the range is recomputed
UTC = timezone.utc
# What the job's log says of each phase (batch_layer/erase.py, batch_layer/job.py).
FOUND = re.compile(r"(\d+) events in the table's version \d+, found in ([\d.]+)s, on (\d+) site-days")
DELETED = re.compile(r"DELETE committed as version \d+ in ([\d.]+)s: numDeletedRows (\d+)")
RECOMPUTED = re.compile(r"site-days \d+ of \d+ recomputed \((\S+) in (\d+) s\)")


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def setup(settings: Settings, per_day: int, days: int) -> Path:
    """The master dataset of the days and their batch views (each step skipped when done)."""
    root = settings.paths.var_dir / "bench" / f"erasure-v1-{per_day}-{days}"
    master = root / "master"
    spark = get_session(settings, "parallax-erasure-bench-setup", batch=True)
    session = cassandra_session(settings, settings.cassandra.keyspace)
    try:
        Registry(session, settings.cassandra.keyspace).add_site(SITE, ["site.test"], "UTC")
        generated = root / "generated"
        if not generated.exists():
            t0 = time.perf_counter()
            frame = visits(spark, per_day * days, start_ms=_day_ms(FIRST), span_ms=days * 86_400_000, sites=1,
                           site_prefix=SITE)
            append_events(archive_frame(frame), master)
            generated.parent.mkdir(parents=True, exist_ok=True)
            generated.touch()
            print(f"generated {per_day * days:,} events of {FIRST}..{FIRST + timedelta(days=days - 1)} in "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)
        for i in range(days):
            day = FIRST + timedelta(days=i)
            done = root / f"batch-{day}"
            if done.exists():
                continue
            t0 = time.perf_counter()
            run_day(spark, session, settings.cassandra.keyspace, str(master), day, {SITE: "UTC"})
            done.touch()
            print(f"batch views of {day}: {time.perf_counter() - t0:.0f}s", flush=True)
    finally:
        session.cluster.shutdown()
        spark.stop()
    return master


def pick_visitors(settings: Settings, master: Path, n: int, seed: int) -> tuple[list[str], int, int]:
    """``n`` visitors still in the table, at random; their events and the days those are on."""
    spark = get_session(settings, "parallax-erasure-bench-pick", batch=True)
    try:
        table = read_table(spark, master)
        ids = [r["visitor_id"] for r in table.select("visitor_id").distinct().orderBy(F.rand(seed)).limit(n).collect()]
        mine = table.where(F.col("visitor_id").isin(ids))
        row = mine.agg(F.count(F.lit(1)).alias("events"), F.countDistinct("date").alias("days")).first()
        return ids, int(row["events"]), int(row["days"])
    finally:
        spark.stop()


def submit(settings: Settings, master: Path, request_id: str, log_path: Path) -> float:
    """The erasure job as the DAG submits it; its wall time (the log to ``log_path``)."""
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", settings.spark.master,
           "--driver-memory", settings.spark.driver_memory, "--name", "parallax-erase"]
    for key, value in submit_conf(settings).items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(REPO_ROOT / "batch_layer" / "erase.py"), "--requests", request_id, "--run-id", "bench"]
    env = {**os.environ, **SPARK_ENV, "PARALLAX_MASTER_DIR": str(master)}
    t0 = time.perf_counter()
    with log_path.open("w") as out:
        code = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    took = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"the erasure job failed ({code}): see {log_path}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--visitors", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None, help="which visitors (default: from the clock)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("batch_layer").setLevel(logging.INFO)
    settings = load_settings()
    master = setup(settings, args.events_per_day, args.days)
    seed = args.seed if args.seed is not None else int(time.time())
    ids, expected, spread = pick_visitors(settings, master, args.visitors, seed)
    print(f"{len(ids)} visitors (seed {seed}): {expected:,} events on {spread} of the {args.days} days", flush=True)

    session = cassandra_session(settings, settings.cassandra.keyspace)
    try:
        erasures = Erasures(session, settings.cassandra.keyspace)
        t0 = time.perf_counter()
        request = erasures.request(ids, "bench:erasure", datetime.now(UTC), site=SITE, note="erasure bench")
        log_path = master.parent / f"erase-{request.id}.log"
        job_s = submit(settings, master, request.id, log_path)
        total_s = time.perf_counter() - t0
        done = erasures.get(request.id)
    finally:
        session.cluster.shutdown()
    assert done is not None and done.status == DONE, done
    assert done.events_removed == expected, (done.events_removed, expected)
    assert not done.waiting and sum(len(d) for d in done.recomputed.values()) == spread, done

    log_text = log_path.read_text()
    found = [(int(n), float(s)) for n, s, _ in FOUND.findall(log_text)]
    deleted = [(float(s), int(n)) for s, n in DELETED.findall(log_text)]
    days = [(day, int(s)) for day, s in RECOMPUTED.findall(log_text)]
    result = {
        "events_per_day": args.events_per_day, "days": args.days, "visitors": len(ids), "events_removed": expected,
        "site_days": spread, "end_to_end_s": round(total_s, 1), "job_s": round(job_s, 1),
        "count_s": round(sum(s for _, s in found), 1), "delete_s": round(sum(s for s, _ in deleted), 1),
        "recompute_s": sum(s for _, s in days), "recompute_per_day_s": [s for _, s in days],
        "job_log": str(log_path),
    }
    print(json.dumps(result), flush=True)
    print(f"\nmachine: {machine()}, Spark driver {settings.spark.driver_memory}, {settings.spark.master}")
    print("| events/day × days | visitors (events) | end to end | count | delete | recompute (per day) |")
    print("|---|---:|---:|---:|---:|---:|")
    per_day = f"{result['recompute_s']} s ({result['recompute_s'] / max(1, len(days)):.0f} s)"
    print(f"| {args.events_per_day:,} × {args.days} | {len(ids)} ({expected:,}) | {result['end_to_end_s']} s "
          f"| {result['count_s']} s | {result['delete_s']} s | {per_day} |")


if __name__ == "__main__":
    main()

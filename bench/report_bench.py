"""Report latency: a 30-day hourly report with one filter, and a breakdown with the same
filter, for a site with 30 days of batch views at 1M events a day plus today's speed
views, under concurrent clients; beside it, the same answers computed by DuckDB straight
from the master dataset's Parquet files.

    .venv/bin/python -m bench.report_bench --events-per-day 1000000 --days 30 --clients 20 --duration 60

Needs the local stack (`parallax stack up`). Setup, cached under var/bench/ (not committed):
the master dataset of the 30 days and of today so far (synthetic visits), the real batch
job run for each of the 30 days (batch views, boundary), and today's events aggregated by
the speed layer's own transform into speed views. Then the serving layer (`parallax serve
--workers 2`) answers: first each question once (its cold time), then wrk's connections
(the clients) ask the report and the breakdown in turn, filtered by one of the countries
(so several distinct questions are in flight, as on dashboards).
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import subprocess
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import duckdb
import requests
from pyspark.sql import functions as F

from batch_layer.job import run_day
from bench.common import machine, reader_token
from infra.clients import cassandra_session
from infra.master import append_events
from infra.proc import CliProcess, free_port, wait_until
from infra.settings import Settings, load_settings
from infra.spark import get_session
from speed_layer.queries import archive_frame
from store.boundary import Boundaries
from store.registry import Registry
from store.views import SPEED_TABLE, ViewWrites
from tools.synthetic.spark import COUNTRIES, visits
from views.catalogue import SPEED_GRANULARITY
from views.transforms import dedupe_events, parse_events, views

SITE = "bench-reports"
UTC = timezone.utc


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def setup(settings: Settings, per_day: int, days: int, today: date, now_ms: int) -> Path:
    """The master dataset, the batch views of the ``days`` before ``today`` and today's
    speed views (each step skipped when already done)."""
    root = settings.paths.var_dir / "bench" / f"reports-v1-{per_day}-{days}"
    master = root / "master"
    first = today - timedelta(days=days)
    spark = get_session(settings, "parallax-report-bench", batch=True)
    session = cassandra_session(settings, settings.cassandra.keyspace)
    try:
        Registry(session, settings.cassandra.keyspace).add_site(SITE, ["site.test"], "UTC")
        past_marker = root / f"past-{first}"
        if not past_marker.exists():
            t0 = time.perf_counter()
            frame = visits(spark, per_day * days, start_ms=_day_ms(first), span_ms=days * 86_400_000, sites=1,
                           site_prefix=SITE)
            shutil.rmtree(master, ignore_errors=True)
            append_events(archive_frame(frame), master)
            past_marker.parent.mkdir(parents=True, exist_ok=True)
            past_marker.touch()
            print(f"generated {per_day * days:,} events of {first}..{today - timedelta(days=1)} "
                  f"in {time.perf_counter() - t0:.0f}s", flush=True)
        boundaries = Boundaries(session, settings.cassandra.keyspace)
        for i in range(days):
            day = first + timedelta(days=i)
            done = root / f"batch-{day}"
            if done.exists():
                continue
            t0 = time.perf_counter()
            run_day(spark, session, settings.cassandra.keyspace, str(master), day, {SITE: "UTC"})
            done.touch()
            print(f"batch views of {day}: {time.perf_counter() - t0:.0f}s", flush=True)
        assert boundaries.of(SITE) == datetime.combine(today, datetime.min.time(), tzinfo=UTC)
        today_marker = root / f"today-{today}"
        if not today_marker.exists():
            span = now_ms - _day_ms(today)
            n = int(per_day * span / 86_400_000)
            frame = visits(spark, n, start_ms=_day_ms(today), span_ms=span, sites=1, site_prefix=SITE, seed=1)
            append_events(archive_frame(frame), master)
            events = dedupe_events(parse_events(frame), within_watermark=False)
            speed = views(events, SPEED_GRANULARITY, exact_visitors=False).where(F.col("bucket") < F.lit(
                datetime.fromtimestamp(now_ms / 1000, UTC)))
            rows = [r.asDict() for r in speed.toLocalIterator()]
            ViewWrites(session, settings.cassandra.keyspace).write(SPEED_TABLE, "event", SPEED_GRANULARITY, rows,
                                                                   datetime.now(UTC))
            today_marker.touch()
            print(f"today: {n:,} events, {len(rows):,} speed view rows", flush=True)
    finally:
        session.cluster.shutdown()
        spark.stop()
    return master


def duckdb_answers(master: Path, start: datetime, end: datetime, country: str) -> float:
    """The same two answers straight from the Parquet files: the hourly series of visitors
    and pageviews and the top pages, of the country's events (duplicates once)."""
    con = duckdb.connect(config={"threads": 2})
    files = f"'{master}/date=*/*.parquet'"
    where = (f"site = '{SITE}' AND country = '{country}' AND ts >= {int(start.timestamp() * 1000)} "
             f"AND ts < {int(end.timestamp() * 1000)}")
    ev = f"SELECT DISTINCT ON (event_id) ts, type, visitor_id, path FROM read_parquet({files}) WHERE {where}"
    t0 = time.perf_counter()
    con.execute(f"""WITH ev AS ({ev}) SELECT ts // 3600000 AS hour, count(*) FILTER (WHERE type = 'pageview'),
                    count(DISTINCT visitor_id) FROM ev GROUP BY hour""").fetchall()
    con.execute(f"""WITH ev AS ({ev}) SELECT path, count(DISTINCT visitor_id) AS v,
                    count(*) FILTER (WHERE type = 'pageview') FROM ev GROUP BY path ORDER BY v DESC""").fetchall()
    took = time.perf_counter() - t0
    con.close()
    return took


WRK_SCRIPT = """
paths = {%(paths)s}
n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1], {["Authorization"] = "Bearer %(token)s"})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "non_2xx": %%d, "socket_errors": %%d, "p50_ms": %%.1f, '
    .. '"p95_ms": %%.1f, "p99_ms": %%.1f, "max_ms": %%.1f}\\n', summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def run_clients(url: str, token: str, paths: list[str], clients: int, duration: float, script: Path
                ) -> dict[str, Any]:
    """wrk (a C load generator: the clients cost the machine little) with ``clients``
    connections asking the paths in turn for ``duration`` seconds."""
    script.write_text(WRK_SCRIPT % {"paths": ", ".join(json.dumps(p) for p in paths), "token": token})
    out = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{int(duration)}s", "--timeout", "30s", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    result["per_s"] = round(result["requests"] / duration, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2, help="serving processes (one per core)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("batch_layer").setLevel(logging.INFO)
    settings = load_settings()
    now = datetime.now(UTC)
    today = now.date()
    master = setup(settings, args.events_per_day, args.days, today, int(now.timestamp() * 1000))

    token = reader_token(settings, "reports")

    if shutil.which("wrk") is None:
        raise SystemExit("the report bench drives the serving layer with wrk: apt-get install wrk (make bench does)")
    port = free_port()
    svc = CliProcess("serving (report bench)", ["serve", "--port", str(port), "--workers", str(args.workers)],
                     settings.paths.var_dir / "logs" / "bench-serving.log",
                     env={"PARALLAX_MASTER_DIR": str(master)}).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("the serving layer", lambda: requests.get(f"{url}/api/v1/health", timeout=2).ok, 60)
        first = (today - timedelta(days=args.days - 1)).isoformat()
        span = {"from": first, "to": today.isoformat()}

        def questions(country: str) -> list[tuple[str, dict]]:
            return [(f"/api/v1/sites/{SITE}/report", {**span, "granularity": "hour", "metrics": "visitors,pageviews",
                                                     "filters": f"country=={country}"}),
                    (f"/api/v1/sites/{SITE}/breakdown", {**span, "dimension": "page",
                                                        "metrics": "visitors,pageviews",
                                                        "filters": f"country=={country}"})]

        queries = [q for c in COUNTRIES for q in questions(c)]
        paths = [f"{path}?{urlencode(params)}" for path, params in queries]
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        cold: dict[str, list[float]] = {"report": [], "breakdown": []}
        sources = {}
        for path, params in queries:  # each question once: computed, then kept
            t0 = time.perf_counter()
            r = http.get(f"{url}{path}", params=params, timeout=600)
            assert r.status_code == 200, r.text
            kind = "report" if path.endswith("/report") else "breakdown"
            cold[kind].append(time.perf_counter() - t0)
            sources[kind] = r.json()["computed_from"]
        # Each serving process keeps its own answers: each question asked again on new
        # connections (which the processes share between them), then rounds not timed,
        # until none had to compute anything.
        for path, params in queries * 3 * args.workers:
            assert requests.get(f"{url}{path}", params=params, headers=http.headers, timeout=600).ok
        for _ in range(30):
            round_ = run_clients(url, token, paths, args.clients, 10, master.parent / "paths.lua")
            print(f"warming up: {json.dumps(round_)}", flush=True)
            if round_["max_ms"] < 1000:
                break
        warm = run_clients(url, token, paths, args.clients, args.duration, master.parent / "paths.lua")
    finally:
        svc.stop()

    start = datetime.combine(date.fromisoformat(first), datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    duck = [duckdb_answers(master, start, end, c) for c in COUNTRIES]
    results: dict[str, Any] = {"machine": machine(), "events_per_day": args.events_per_day, "days": args.days,
                               "clients": args.clients, "duration_s": args.duration, "workers": args.workers,
                               "computed_from": sources,
                               "cold_s": {k: round(statistics.median(v), 3) for k, v in cold.items()},
                               "duckdb_both_s": round(statistics.median(duck), 3)}
    results["warm"] = warm
    results["duckdb_vs_p50"] = round(results["duckdb_both_s"] / (2 * warm["p50_ms"] / 1000), 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

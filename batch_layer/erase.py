"""spark-submit entry point of an erasure: remove data subjects' events from the master
dataset and recompute every site-day they touched.

    spark-submit batch_layer/erase.py --requests ID[,ID...] [--run-id RUN_ID]

For each request (``store.erasures``; a request already done is left as it is):

1. find the request's events (its visitor ids, on its site or every site) in the table's
   current version, and count them per site and local day (the day in the site's zone);
2. record those site-days on the request, and the property views the events count in
   (``batch_view_names``), before anything is deleted: a retry after a crash knows them;
3. DELETE them from the Delta table in one transaction (the commit carries the request's
   id as its user metadata), restricted to the date partitions they are in;
4. check the commit's ``numDeletedRows`` against the count. Blind appends of the archive
   query do not conflict with the delete; if some of the visitors' events were appended
   between the count and the delete's snapshot, the count is redone on the two versions
   around the commit (time travel), whose difference must be what it removed. Events
   appended after the delete's snapshot are found by a second round, and so on.

Then every affected site-day whose day has ended (+ grace) in the site's zone is
recomputed as the nightly run does it (``batch_layer.job.run_day``): its batch views are
replaced wholesale, so rows that only the erased events made are deleted. Days that have
not ended are left to the nightly run, which reads the table without the events. Last,
the request is recorded as done: the events removed, the site-days recomputed and those
left to the nightly run. Progress is this job's log (the Airflow task's log).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from cassandra.cluster import Session
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_layer.job import run_day
from batch_layer.schedule import sites_with_day_ended, utcnow
from infra import master
from infra.clients import cassandra_session
from infra.settings import Settings, load_settings
from infra.spark import get_session
from store.erasures import DONE, ErasureError, ErasureRequest, Erasures, SiteDays, merge_site_days, site_days_text
from store.registry import Registry
from store.replacement import ViewNames
from views.catalogue import PROPERTY_VIEW_PREFIX

log = logging.getLogger("batch_layer.erase")

# Where Delta takes a commit's user metadata from (the session's conf, per commit).
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
# Rounds of find-and-delete: a second one only when some of the visitors' events were
# appended while the first deleted (the visitor still active, events in flight).
MAX_ROUNDS = 3


def commit_tag(request_id: str) -> str:
    """The user metadata of a request's delete commits."""
    return f"parallax erasure {request_id}"


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def predicate(visitor_ids: Iterable[str], site: str | None, dates: Iterable[date] = ()) -> str:
    """The SQL condition of a request's events (in ``dates``' partitions, if given)."""
    parts = [f"visitor_id IN ({', '.join(sql_string(v) for v in sorted(visitor_ids))})"]
    if site is not None:
        parts.append(f"site = {sql_string(site)}")
    dates = sorted(set(dates))
    if dates:
        parts.append(f"{master.PARTITION} IN ({', '.join(f'DATE {sql_string(d.isoformat())}' for d in dates)})")
    return " AND ".join(parts)


@dataclass
class Found:
    """A request's events in one version of the table: per (site, local day) their count,
    and the property keys they carry; the UTC date partitions they are in."""
    counts: dict[tuple[str, date], int] = field(default_factory=dict)
    props: dict[tuple[str, date], set[str]] = field(default_factory=dict)
    dates: set[date] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def site_days(self) -> SiteDays:
        return merge_site_days(*({site: [day]} for site, day in self.counts))


def find(spark: SparkSession, table: DataFrame, condition: str, zones: Mapping[str, str]) -> Found:
    """The events of ``table`` matching ``condition``, counted per site and local day
    (a site that is not registered: its UTC day)."""
    zone = spark.createDataFrame(sorted(zones.items()) or [("", "UTC")], "site STRING, timezone STRING")
    events = table.where(condition).join(F.broadcast(zone), "site", "left")
    local_day = F.to_date(F.from_utc_timestamp(F.col("event_time"), F.coalesce(F.col("timezone"), F.lit("UTC"))))
    keys = F.map_keys(F.coalesce(F.col("props"), F.create_map().cast("map<string,string>")))
    rows = events.groupBy("site", local_day.alias("day")).agg(
        F.count(F.lit(1)).alias("n"), F.collect_set(master.PARTITION).alias("dates"),
        F.array_distinct(F.flatten(F.collect_list(keys))).alias("props")).collect()
    found = Found()
    for r in rows:
        found.counts[(r["site"], r["day"])] = int(r["n"])
        found.props[(r["site"], r["day"])] = set(r["props"] or ())
        found.dates.update(r["dates"])
    return found


def tagged_deletes(spark: SparkSession, path: str, tag: str, after: int) -> list[tuple[int, int]]:
    """(version, numDeletedRows) of the DELETE commits tagged ``tag`` after version ``after``
    (the history read back only that far)."""
    newest = master.current_version(path)
    if newest is None or newest <= after:
        return []
    history = spark.sql(f"DESCRIBE HISTORY {master.sql_name(path)} LIMIT {newest - after}")
    rows = history.where((F.col("version") > after) & (F.col("operation") == "DELETE")
                         & (F.col("userMetadata") == tag)).select("version", "operationMetrics").collect()
    return sorted((int(r["version"]), int((r["operationMetrics"] or {}).get("numDeletedRows", 0))) for r in rows)


def delete(spark: SparkSession, path: str, condition: str, tag: str, read_version: int) -> tuple[int | None, int]:
    """DELETE the rows matching ``condition`` in one commit tagged ``tag``: its version
    (None if nothing matched and nothing was committed) and its numDeletedRows."""
    spark.conf.set(USER_METADATA, tag)
    try:
        spark.sql(f"DELETE FROM {master.sql_name(path)} WHERE {condition}")
    finally:
        spark.conf.unset(USER_METADATA)
    commits = tagged_deletes(spark, path, tag, read_version)
    if not commits:
        return None, 0
    return commits[-1]


class Eraser:
    """One erasure job's work: its requests' deletes, then the site-days they touched."""

    def __init__(self, spark: SparkSession, settings: Settings, session: Session, run_id: str) -> None:
        self.spark, self.settings, self.session, self.run_id = spark, settings, session, run_id
        self.keyspace = settings.cassandra.keyspace
        self.path = str(settings.paths.master_dir)
        self.erasures = Erasures(session, self.keyspace)
        self.zones = Registry(session, self.keyspace).site_zones()

    def remove_events(self, request: ErasureRequest) -> tuple[SiteDays, int]:
        """Steps 1-4 of the module's doc: the request's site-days (this attempt's and any
        earlier one's) and the events removed by all its attempts."""
        tag = commit_tag(request.id)
        site_days = dict(request.site_days)
        removed = request.events_removed or 0
        if request.plan_version is not None:
            # An earlier attempt stopped between its count and recording its delete: its
            # commits, if any, say what it removed.
            earlier = tagged_deletes(self.spark, self.path, tag, request.plan_version)
            removed += sum(n for _, n in earlier)
            if earlier:
                log.info("erasure %s: an earlier attempt removed %d events (version %s) before it stopped",
                         request.id, sum(n for _, n in earlier), ", ".join(str(v) for v, _ in earlier))
                self.erasures.deleted(request.id, removed, earlier[-1][0])
        if not master.table_exists(self.path):
            log.warning("erasure %s: no master dataset at %s: nothing to remove", request.id, self.path)
            return site_days, removed
        condition = predicate(request.visitor_ids, request.site)
        for round_no in range(1, MAX_ROUNDS + 1):
            version = master.current_version(self.path)
            t0 = time.perf_counter()
            found = find(self.spark, master.read_table(self.spark, self.path, version), condition, self.zones)
            if not found.total:
                log.info("erasure %s: no event of its visitors in the table's version %d (%.1fs)%s", request.id,
                         version, time.perf_counter() - t0, "" if round_no > 1 else ": nothing to delete")
                break
            log.info("erasure %s: %d events in the table's version %d, found in %.1fs, on %d site-days:", request.id,
                     found.total, version, time.perf_counter() - t0, len(found.counts))
            for (site, day), n in sorted(found.counts.items()):
                log.info("erasure %s:   %s %s: %d events", request.id, site, day, n)
            # Durable before the delete: the site-days, and the property views to look in.
            site_days = merge_site_days(site_days, found.site_days())
            self.erasures.planned(request.id, site_days, version)
            ViewNames(self.session, self.keyspace).add(
                {(site, day, "event"): {PROPERTY_VIEW_PREFIX + k for k in keys}
                 for (site, day), keys in found.props.items()}, datetime.now(timezone.utc))
            t0 = time.perf_counter()
            in_dates = predicate(request.visitor_ids, request.site, found.dates)
            committed, deleted = delete(self.spark, self.path, in_dates, tag, version)
            log.info("erasure %s: DELETE committed as version %s in %.1fs: numDeletedRows %d", request.id, committed,
                     time.perf_counter() - t0, deleted)
            if deleted != found.total:
                site_days = merge_site_days(site_days, self.reconcile(request, in_dates, committed, deleted, found))
            removed += deleted
            self.erasures.deleted(request.id, removed, committed)
        else:
            log.warning("erasure %s: events of its visitors were still being archived after %d rounds: those "
                        "archived from now on are not erased (make a new request for them)", request.id, MAX_ROUNDS)
        return site_days, removed

    def reconcile(self, request: ErasureRequest, condition: str, committed: int | None, deleted: int,
                  found: Found) -> SiteDays:
        """The delete removed other than the count: some of the events were appended between
        the count's version and the delete's snapshot. The versions around the commit must
        differ by exactly what it removed; returns the site-days of what it removed."""
        if committed is None:
            raise ErasureError(f"erasure {request.id}: {found.total} events counted, but the DELETE committed nothing")
        before = find(self.spark, master.read_table(self.spark, self.path, committed - 1), condition, self.zones)
        after = find(self.spark, master.read_table(self.spark, self.path, committed), condition, self.zones)
        if before.total - after.total != deleted:
            raise ErasureError(f"erasure {request.id}: the DELETE (version {committed}) reports {deleted} rows "
                               f"removed, but versions {committed - 1} and {committed} differ by "
                               f"{before.total - after.total}")
        log.info("erasure %s: %d more events of its visitors were archived between the count and the delete; the "
                 "versions around the delete differ by exactly the %d it removed", request.id,
                 deleted - found.total, deleted)
        return before.site_days()

    def recompute(self, site_days: SiteDays) -> tuple[SiteDays, SiteDays]:
        """Recompute every site-day that has ended (+ grace), day by day; (recomputed, left
        to the nightly run)."""
        by_day: dict[date, list[str]] = {}
        for site, days in site_days.items():
            if site not in self.zones:
                log.warning("site %s is not registered: its days %s are not recomputed", site,
                            ", ".join(str(d) for d in days))
                continue
            for day in days:
                by_day.setdefault(day, []).append(site)
        recomputed: dict[str, list[date]] = {}
        waiting: dict[str, list[date]] = {}
        plan = []
        for day, sites in sorted(by_day.items()):
            ready, not_yet = sites_with_day_ended({s: self.zones[s] for s in sites}, day, utcnow())
            for site in not_yet:
                waiting.setdefault(site, []).append(day)
            if ready:
                plan.append((day, ready))
        for site, days in sorted(waiting.items()):
            log.info("%s %s: not ended (+ grace) yet: the nightly run computes it from the erased table", site,
                     ", ".join(str(d) for d in days))
        total = sum(len(sites) for _, sites in plan)
        done = 0
        for day, sites in plan:
            t0 = time.perf_counter()
            log.info("site-days %d-%d of %d: %s for %s", done + 1, done + len(sites), total, day, ", ".join(sites))
            run_day(self.spark, self.session, self.keyspace, self.path, day, {s: self.zones[s] for s in sites},
                    self.settings.spark.session_gap, self.settings.alerts.drift_threshold)
            done += len(sites)
            for site in sites:
                recomputed.setdefault(site, []).append(day)
            log.info("site-days %d of %d recomputed (%s in %.0f s)", done, total, day, time.perf_counter() - t0)
        return merge_site_days(recomputed), merge_site_days(waiting)


def _days_of(site_days: SiteDays, wanted: SiteDays) -> SiteDays:
    return {site: tuple(d for d in days if d in set(wanted.get(site, ()))) for site, days in site_days.items()
            if any(d in set(wanted.get(site, ())) for d in days)}


def run(settings: Settings, request_ids: list[str], run_id: str) -> int:
    keyspace = settings.cassandra.keyspace
    session = cassandra_session(settings, keyspace)
    spark = None
    try:
        erasures = Erasures(session, keyspace)
        requests = []
        for request_id in request_ids:
            request = erasures.get(request_id)
            if request is None:
                log.error("no erasure request %r", request_id)
                return 2
            if request.status == DONE:
                log.info("erasure %s is done already (%s events removed, finished %s): nothing to do", request.id,
                         request.events_removed, request.finished_at)
                continue
            requests.append(request)
        if not requests:
            log.info("no erasure to do")
            return 0
        spark = get_session(settings, "parallax-erasure", batch=True)
        eraser = Eraser(spark, settings, session, run_id)
        touched: dict[str, SiteDays] = {}
        failed = 0
        for request in requests:
            erasures.start(request.id, run_id, datetime.now(timezone.utc))
            log.info("erasure %s: %d visitor id(s)%s, asked by %s at %s", request.id, len(request.visitor_ids),
                     f" on site {request.site}" if request.site else " on every site", request.requested_by,
                     request.requested_at.isoformat())
            try:
                site_days, removed = eraser.remove_events(request)
            except Exception as exc:
                log.exception("erasure %s failed while removing its events", request.id)
                erasures.fail(request.id, f"{type(exc).__name__}: {exc}", datetime.now(timezone.utc))
                failed += 1
                continue
            log.info("erasure %s: %d events removed in all; site-days to recompute: %s", request.id, removed,
                     site_days_text(site_days))
            touched[request.id] = site_days
        try:
            recomputed, waiting = eraser.recompute(merge_site_days(*touched.values()))
        except Exception as exc:
            log.exception("recomputing the erased site-days failed")
            for request_id in touched:
                erasures.fail(request_id, f"recomputing its site-days failed: {type(exc).__name__}: {exc} "
                                          "(its events are removed; a retry recomputes the days)",
                              datetime.now(timezone.utc))
            return 1
        for request_id, site_days in touched.items():
            erasures.finish(request_id, _days_of(site_days, recomputed), _days_of(site_days, waiting),
                            datetime.now(timezone.utc))
            done = erasures.get(request_id)
            log.info("erasure %s done: %s events removed; recomputed: %s; left to the nightly run: %s", request_id,
                     done.events_removed if done else "?", site_days_text(done.recomputed if done else {}),
                     site_days_text(done.waiting if done else {}))
        return 1 if failed else 0
    finally:
        session.cluster.shutdown()
        if spark is not None:
            spark.stop()


def _ids(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Erase visitors' events and recompute the site-days they touched.")
    parser.add_argument("--requests", type=_ids, required=True, help="comma-separated erasure request ids")
    parser.add_argument("--run-id", default="", help="what took the requests (the Airflow run id); default: now")
    # Airflow's templated arguments leave an empty string where an option is left out.
    return parser.parse_args([a for a in (sys.argv[1:] if argv is None else argv) if a])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_id = args.run_id or datetime.now(timezone.utc).strftime("manual__%Y-%m-%dT%H:%M:%S")
    return run(load_settings(), args.requests, run_id)


if __name__ == "__main__":
    sys.exit(main())

"""Erasure on the real stack: the DAG `parallax_erasure`, run by `dag.test()` with spark-submit
against a master dataset of the test's own, removes the erased visitors' events from the
Delta table and recomputes the site-days they were on; afterwards every batch view row of
the sites equals an independent count of the remaining events (rows only the erased
visitors made are gone, not left with old values), the request records what was done, and
a second run changes nothing. Also: the DAG's shape, the admin API routes and the CLI."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import pytest
from click.testing import CliRunner
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from pyspark.sql import functions as F

from batch_layer.erase import parse_args as parse_erase_args
from batch_layer.job import run_day
from cli.main import main as cli
from infra.airflow_env import airflow_env
from infra.clients import create_topics, delete_topics
from infra.master import append_events
from schemas import topics
from schemas.sources import source_fields
from speed_layer.queries import archive_frame
from store.accounts import generate_password
from store.erasures import DONE, Erasures
from tests.helpers import wait_for
from tools.synthetic import archived_event

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)
DAYS = [NOW.date() - timedelta(days=n) for n in (5, 4, 3)]
ZONES = {"utc": "UTC", "kolkata": "Asia/Kolkata"}
DOMAINS = ("x.test",)
ERASED = ("gone-1", "gone-2")
GAP_MS = 30 * 60_000
NONE = "(none)"
# Event views whose value is an event field (the first set, else "(none)").
FIELDS = {"page": ("path",), "channel": ("channel",), "source": ("source",), "utm_source": ("utm_source",),
          "utm_medium": ("utm_medium",), "utm_campaign": ("utm_campaign",), "country": ("country",),
          "device": ("device",), "browser": ("browser",), "os": ("os",), "event_name": ("name", "type")}
EVENT_MEASURES = ("pageviews", "events", "visitors", "clicks", "impressions")
SESSION_MEASURES = ("sessions", "bounces", "duration_ms", "session_pageviews")


def event(site: str, at: datetime, visitor: str, kind: str = "pageview", path: str = "/", props: dict | None = None,
          query: str = "") -> dict:
    """An event as the collector archives it: classified, with a client."""
    e = archived_event(site, at, visitor, kind, path, query, None, props, country="IN" if visitor[-1] in "02468"
                       else "FR", device="mobile" if visitor[-1] in "13579" else "desktop", browser="Firefox",
                       os="Linux")
    return e | source_fields(e["url"], e["referrer"], DOMAINS)


# --- an independent count of the views --------------------------------------------------

def local(ts_ms: int, tz: str) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(ZoneInfo(tz))


def bucket(ts_ms: int, tz: str, granularity: str) -> datetime:
    utc, loc = datetime.fromtimestamp(ts_ms / 1000, UTC), local(ts_ms, tz)
    if granularity == "minute":
        return utc.replace(second=0, microsecond=0)
    if granularity == "hour":
        return utc - timedelta(minutes=loc.minute, seconds=loc.second, microseconds=loc.microsecond)
    return datetime.combine(loc.date(), datetime.min.time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def event_keys(e: dict) -> list[tuple[str, str]]:
    """The (view, value) rows an event counts in, apart from the site total."""
    keys = [(view, next((e.get(f) for f in fields if e.get(f) is not None), NONE)) for view, fields in FIELDS.items()]
    props = e["props"] or {}
    if e["type"] in ("click", "impression") and props.get("element") is not None:
        keys.append(("element", props["element"]))
    keys += [(f"prop:{k}", NONE if v is None else v) for k, v in props.items()]
    return keys


def sessions_of(events: list[dict]) -> list[list[dict]]:
    by_visitor: dict[str, list[dict]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        by_visitor[e["visitor_id"]].append(e)
    out = []
    for evs in by_visitor.values():
        current: list[dict] = []
        for e in evs:
            if current and e["ts"] - current[-1]["ts"] > GAP_MS:
                out.append(current)
                current = []
            current.append(e)
        out.append(current)
    return out


def reference(events: list[dict], tz: str, days: list[date]) -> dict[tuple, tuple]:
    """Every batch row the runs of ``days`` leave, counted here: event rows of the days,
    session rows of the sessions that started on them or the day before the first.
    {(view, granularity, bucket, dim): (event measures or None, session measures or None)}."""
    unique = list({e["event_id"]: e for e in events}.values())
    counted: dict[tuple, dict] = defaultdict(lambda: {"pageviews": 0, "events": 0, "v": set(), "clicks": 0,
                                                      "impressions": 0})
    for e in unique:
        if local(e["ts"], tz).date() not in days:
            continue
        for granularity in ("minute", "hour", "day"):
            views = [("traffic", "")] + (event_keys(e) if granularity != "minute" else [])
            for view, dim in views:
                row = counted[(view, granularity, bucket(e["ts"], tz, granularity), dim)]
                row["events"] += 1
                row["v"].add(e["visitor_id"])
                for measure, kind in (("pageviews", "pageview"), ("clicks", "click"), ("impressions", "impression")):
                    row[measure] += e["type"] == kind
    rows: dict[tuple, list] = {k: [(v["pageviews"], v["events"], len(v["v"]), v["clicks"], v["impressions"]), None]
                               for k, v in counted.items()}
    session_days = {days[0] - timedelta(days=1), *days}
    for s in sessions_of(unique):
        if local(s[0]["ts"], tz).date() not in session_days:
            continue
        pages = [e["path"] for e in s if e["type"] == "pageview"]
        measures = (1, int(len(pages) == 1), s[-1]["ts"] - s[0]["ts"], len(pages))
        for granularity in ("minute", "hour", "day"):
            for view, dim in (("traffic", ""), ("entry_page", pages[0] if pages else NONE),
                              ("exit_page", pages[-1] if pages else NONE)):
                row = rows.setdefault((view, granularity, bucket(s[0]["ts"], tz, granularity), dim), [None, None])
                row[1] = tuple(a + b for a, b in zip(row[1] or (0, 0, 0, 0), measures))
    return {k: tuple(v) for k, v in rows.items()}


def stored(cassandra, ks: str, site: str) -> dict[tuple, tuple]:
    """Every batch row of the site, in the reference's shape (a measure set null: None)."""
    rows = cassandra.execute(f"SELECT view_name, granularity, bucket, dim, {', '.join(EVENT_MEASURES)}, "
                             f"{', '.join(SESSION_MEASURES)} FROM {ks}.batch_views WHERE site=%s ALLOW FILTERING",
                             (site,))
    out = {}
    for r in rows:
        ev = tuple(getattr(r, m) for m in EVENT_MEASURES)
        se = tuple(getattr(r, m) for m in SESSION_MEASURES)
        out[(r.view_name, r.granularity, r.bucket.replace(tzinfo=UTC), r.dim)] = (
            None if all(v is None for v in ev) else ev, None if all(v is None for v in se) else se)
    return out


def whole_rows(cassandra, ks: str, site: str) -> dict[tuple, tuple]:
    """Every column of every batch row of the site (sketches included)."""
    rows = cassandra.execute(f"SELECT * FROM {ks}.batch_views WHERE site=%s ALLOW FILTERING", (site,))
    return {(r.view_name, r.granularity, r.period, r.bucket, r.dim): tuple(r) for r in rows}


# --- the world: two sites, three computed days, two visitors to erase --------------------

def at(day: date, tz: str, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=ZoneInfo(tz))


@pytest.fixture(scope="module")
def world(stack, spark, registry, cassandra, tmp_path_factory):
    rng = random.Random(1903)
    tag = uuid.uuid4().hex[:6]
    sites = {f"era-{name}-{tag}": tz for name, tz in ZONES.items()}
    (a, tz_a), (b, tz_b) = sites.items()
    events: dict[str, list[dict]] = {}
    for site, tz in sites.items():
        registry.add_site(site, list(DOMAINS), tz)
        start = at(DAYS[0] - timedelta(days=1), tz, 0, 0)
        evs = []
        while len(evs) < 600:
            ts = start + timedelta(seconds=rng.randrange(5 * 86400))
            if site == a and ts.astimezone(ZoneInfo(tz)).date() == DAYS[1] and ts.astimezone(ZoneInfo(tz)).hour in (3, 6):
                continue  # hours left to the crafted visits below
            kind = rng.choice(["pageview", "pageview", "click", "impression", "custom"])
            props = {"element": rng.choice(["cta", "banner"])} if kind in ("click", "impression") else (
                {"plan": rng.choice(["free", "pro"])} if kind == "custom" else None)
            evs.append(event(site, ts, f"v{rng.randrange(40)}", kind, rng.choice(["/", "/a", "/b"]), props,
                             rng.choice(["", "", "?utm_source=news&utm_medium=email"])))
        events[site] = evs
    # Erased: on A, a page, a property, an element and an hour (03:00) that only they have;
    # a session starting at 06:20 in an hour whose only other event continues a session
    # from 05:50 (the hour keeps its events, loses its sessions); on A and B the day before;
    # on B a later day, and today (not ended: left to the nightly run).
    gone = [
        event(a, at(DAYS[1], tz_a, 3, 10), "gone-1", path="/only-gone", props={"secret": "s3"}),
        event(a, at(DAYS[1], tz_a, 3, 20), "gone-1", "click", "/only-gone", {"element": "gone-cta"}),
        event(a, at(DAYS[1], tz_a, 6, 20), "gone-1", path="/a"),
        event(a, at(DAYS[0], tz_a, 12, 0), "gone-1", path="/b", props={"secret": "s0"}),
        event(b, at(DAYS[0], tz_b, 9, 0), "gone-1", path="/"),
        event(b, at(DAYS[2], tz_b, 22, 0), "gone-2", "custom", "/b", {"plan": "gone-plan"}),
        event(b, NOW - timedelta(minutes=5), "gone-2", path="/"),
    ]
    gone += [dict(gone[0]), dict(gone[5])]  # retried deliveries: two copies archived
    stay = [event(a, at(DAYS[1], tz_a, 5, 50), "stay", path="/"), event(a, at(DAYS[1], tz_a, 6, 5), "stay", path="/a")]
    for e in gone + stay:
        events[e["site"]].append(e)
    master = tmp_path_factory.mktemp("erasure") / "master"
    raw = spark.createDataFrame([(json.dumps(e),) for evs in events.values() for e in evs], "value STRING")
    append_events(archive_frame(raw), master)
    ks = stack.cassandra.keyspace
    for day in DAYS:
        run_day(spark, cassandra, ks, str(master), day, sites)
    # Day 0 of A as computed before runs recorded their view names: the erasure must say
    # which property views its events are in.
    cassandra.execute(f"DELETE FROM {ks}.batch_view_names WHERE site=%s AND day=%s", (a, DAYS[0]))
    return {"sites": sites, "events": events, "master": master, "gone": gone}


@contextmanager
def master_dir(path: Path):
    saved = os.environ["PARALLAX_MASTER_DIR"]
    os.environ["PARALLAX_MASTER_DIR"] = str(path)
    try:
        yield
    finally:
        os.environ["PARALLAX_MASTER_DIR"] = saved


def erasure_dag():
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415 -- after the session's Airflow settings

    return DagBag(dag_folder=str(REPO / "dags")).get_dag("parallax_erasure")


def run_erasure(world, request_id: str):
    with master_dir(world["master"]):
        run = erasure_dag().test(run_conf={"request_id": request_id})
    assert "success" in str(run.state).lower(), run.state
    return run


def test_erasure_removes_the_visitors_events_and_every_view_row_they_made(world, spark, cassandra, stack, airflow_db):
    ks = stack.cassandra.keyspace
    (a, tz_a), (b, tz_b) = world["sites"].items()
    # Before: the views count them (their own page, property and element rows included).
    before = stored(cassandra, ks, a)
    assert any(k[0] == "page" and k[3] == "/only-gone" for k in before)
    assert {("prop:secret", "hour"), ("element", "day")} <= {(k[0], k[1]) for k in before if k[3] in ("s0", "gone-cta")}
    assert before == reference(world["events"][a], tz_a, DAYS)

    erasures = Erasures(cassandra, ks)
    request = erasures.request(list(ERASED), "cli:tests", datetime.now(UTC), note="ticket 42")
    run_erasure(world, request.id)

    # Not an event of theirs in the master dataset; every other event still there.
    table = spark.read.format("delta").load(str(world["master"]))
    assert table.where(F.col("visitor_id").isin(*ERASED)).count() == 0
    assert table.count() == sum(len(evs) for evs in world["events"].values()) - len(world["gone"])

    done = erasures.get(request.id)
    today_b = NOW.astimezone(ZoneInfo(tz_b)).date()
    assert (done.status, done.events_removed, done.attempts, done.error) == (DONE, len(world["gone"]), 1, None)
    assert done.site_days == {a: (DAYS[0], DAYS[1]), b: (DAYS[0], DAYS[2], today_b)}
    assert done.recomputed == {a: (DAYS[0], DAYS[1]), b: (DAYS[0], DAYS[2])}
    assert done.waiting == {b: (today_b,)}
    assert done.requested_by == "cli:tests" and done.note == "ticket 42" and done.finished_at is not None
    assert done.delete_version is not None and done.plan_version is None

    # Every batch row equals the count of the events that remain: visitors recounted, and
    # the rows only the erased visitors made gone (hour 03:00 of A whole; hour 06:00 keeps
    # its events and loses its sessions).
    remaining = {site: [e for e in evs if e["visitor_id"] not in ERASED] for site, evs in world["events"].items()}
    for site, tz in world["sites"].items():
        after = stored(cassandra, ks, site)
        assert after == reference(remaining[site], tz, DAYS), site
        assert not any(dim in ("/only-gone", "gone-cta", "s0", "s3", "gone-plan") for *_, dim in after), site
        assert not any(view == "prop:secret" for view, *_ in after), site
    three = at(DAYS[1], tz_a, 3, 0).astimezone(UTC)
    six = at(DAYS[1], tz_a, 6, 0).astimezone(UTC)
    after_a = stored(cassandra, ks, a)
    assert ("traffic", "hour", three, "") in before and ("traffic", "hour", three, "") not in after_a
    assert before[("traffic", "hour", six, "")][1] == (1, 1, 0, 1)
    assert after_a[("traffic", "hour", six, "")] == ((1, 1, 1, 0, 0), None)

    # A second run of the request changes nothing: no delete, no recompute, the same rows.
    rows = {site: whole_rows(cassandra, ks, site) for site in world["sites"]}
    version = spark.sql(f"DESCRIBE HISTORY delta.`{world['master']}` LIMIT 1").first()["version"]
    run = run_erasure(world, request.id)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert "success" in states["take"] and "skipped" in states["erase"], states
    assert {site: whole_rows(cassandra, ks, site) for site in world["sites"]} == rows
    assert spark.sql(f"DESCRIBE HISTORY delta.`{world['master']}` LIMIT 1").first()["version"] == version
    assert erasures.get(request.id) == done


def test_the_erasure_dag_takes_requests_every_five_minutes_or_one_by_hand(airflow_db):
    dag = erasure_dag()
    assert dag.doc_md and dag.catchup is False and dag.max_active_runs == 1
    assert type(dag.timetable).__name__ == "CronTriggerTimetable" and dag.timetable.expression == "*/5 * * * *"
    assert {t.task_id for t in dag.tasks} == {"take", "erase"}
    assert dag.get_task("take").downstream_task_ids == {"erase"}
    erase = dag.get_task("erase")
    assert erase.task_type == "SparkSubmitOperator" and erase.application.endswith("batch_layer/erase.py")
    schema = dag.params.get_param("request_id").schema
    assert schema["type"] == ["null", "string"] and schema["pattern"] and dag.params["request_id"] is None

    class TI:
        @staticmethod
        def xcom_pull(task_ids: str) -> list[str]:
            assert task_ids == "take"
            return ["0123456789ab", "ba9876543210"]

    rendered = [jinja2.Template(arg).render(ti=TI(), run_id="scheduled__x") for arg in erase.application_args]
    args = parse_erase_args(rendered)
    assert (args.requests, args.run_id) == (["0123456789ab", "ba9876543210"], "scheduled__x")


# --- the API and the CLI -----------------------------------------------------------------

@pytest.fixture(scope="module")
def members(accounts, registry):
    """A site, and tokens of its analyst and viewer."""
    site = f"era-api-{uuid.uuid4().hex[:6]}"
    registry.add_site(site, list(DOMAINS), "UTC")
    tokens = {}
    for role in ("analyst", "viewer"):
        email = f"era-{role}-{uuid.uuid4().hex[:6]}@example.test"
        accounts.add_user(email, generate_password())
        accounts.grant(email, site, role)
        tokens[role] = accounts.create_token(email, "tests")[1]
    return site, tokens


def _settled(erasures: Erasures, request_id: str) -> None:
    """A request made by a test is never to be run by a scheduled erasure."""
    erasures.fail(request_id, "made by a test; not to be run", datetime.now(UTC))


def _erasure_runs(request_id: str) -> list:
    """The runs of the erasure DAG in this session's Airflow database triggered for ``request_id``."""
    from airflow.models.dagrun import DagRun  # noqa: PLC0415 -- after the session's Airflow settings
    from airflow.utils.session import create_session  # noqa: PLC0415

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "parallax_erasure").all()
        return [(r.run_id, str(r.state)) for r in runs if (r.conf or {}).get("request_id") == request_id]


def test_admins_request_erasures_over_the_api(serving_app, members, cassandra, stack, accounts, airflow_db):
    # Airflow triggers only the DAGs its database knows (a scheduler's DAG processor puts them there).
    reserialized = subprocess.run([sys.executable, "-m", "airflow", "dags", "reserialize"], capture_output=True,
                                  text=True, env={**os.environ, **airflow_env(airflow_db)})
    assert reserialized.returncode == 0, reserialized.stderr[-2000:]
    client = serving_app()
    site, tokens = members
    erasures = Erasures(cassandra, stack.cassandra.keyspace)
    r = client.post("/api/v1/admin/erasures", json={"visitor_ids": ["api-v1", "api-v2", "api-v1"], "site": site,
                                                     "note": "ticket 7"})
    assert r.status_code == 202, r.text
    made = r.get_json()
    try:
        assert (made["status"], made["visitor_ids"], made["site"], made["note"]) == (
            "pending", ["api-v1", "api-v2"], site, "ticket 7")
        assert made["requested_by"].startswith("admin-")  # the session's admin, by email
        assert client.get(f"/api/v1/admin/erasures/{made['id']}").get_json() == made
        listed = client.get("/api/v1/admin/erasures?status=pending&limit=1000").get_json()["erasures"]
        assert made in listed
        assert made["id"] in {x.id for x in erasures.to_take()}
        # The route triggered the DAG for it (no scheduler runs in the tests: the run stays queued).
        run_id, state = wait_for("the erasure DAG's run for the request", lambda: _erasure_runs(made["id"]),
                                 timeout=90)[0]
        assert run_id.startswith("manual__") and "queued" in state
    finally:
        _settled(erasures, made["id"])
    assert client.get("/api/v1/admin/erasures/000000000000").status_code == 404

    # Only admins: an analyst and a viewer of the site are refused, reading too.
    for role, token in tokens.items():
        auth = {"Authorization": f"Bearer {token}"}
        for method, path in (("POST", "/api/v1/admin/erasures"), ("GET", "/api/v1/admin/erasures"),
                             ("GET", f"/api/v1/admin/erasures/{made['id']}")):
            got = client.open(path, method=method, headers=auth, json={"visitor_ids": ["x"]} if method == "POST"
                              else None)
            assert got.status_code == 403 and got.get_json()["error"] == "only admins may do this", (role, path)


@pytest.mark.parametrize("body, says", [
    ({"visitor_ids": []}, "'visitor_ids': List should have at least 1 item"),
    ({"visitor_ids": ["ok", "not ok"]}, "'visitor_ids.1': String should match pattern"),
    ({"visitor_ids": ["x" * 65]}, "'visitor_ids.0': String should match pattern"),
    ({"visitor_ids": "v1"}, "'visitor_ids': Input should be a valid list"),
    ({"visitor_ids": ["v1"], "site": "no-such-site"}, "no such site: 'no-such-site'"),
    ({"visitor_ids": ["v1"], "site": ""}, "'site': String should match pattern"),
    ({"visitor_ids": ["v1"], "sites": ["a"]}, "'sites': Extra inputs are not permitted"),
    ({}, "'visitor_ids': Field required"),
])
def test_a_bad_erasure_request_is_a_400_that_says_what_is_wrong(serving_app, body, says):
    r = serving_app().post("/api/v1/admin/erasures", json=body)
    assert r.status_code == 400 and says in r.get_json()["error"], r.text


def test_parallax_erase_records_a_request_and_shows_it(stack, cassandra, members):
    site, _ = members
    runner = CliRunner()
    made = runner.invoke(cli, ["erase", "cli-v1", "cli-v2", "--site", site, "--note", "by mail", "--no-trigger"])
    assert made.exit_code == 0, made.output
    request_id = made.output.split("erasure request ", 1)[1].split()[0]
    erasures = Erasures(cassandra, stack.cassandra.keyspace)
    try:
        request = erasures.get(request_id)
        assert (request.status, request.visitor_ids, request.site, request.note) == (
            "pending", ("cli-v1", "cli-v2"), site, "by mail")
        assert request.requested_by.startswith("cli:")
        shown = runner.invoke(cli, ["erasures", "show", request_id])
        assert shown.exit_code == 0 and "cli-v1, cli-v2" in shown.output and "pending" in shown.output
        assert request_id in runner.invoke(cli, ["erasures", "list", "--status", "pending"]).output
    finally:
        _settled(erasures, request_id)
    retried = runner.invoke(cli, ["erasures", "retry", request_id, "--no-trigger"])
    assert retried.exit_code == 0 and erasures.get(request_id).status == "pending"
    _settled(erasures, request_id)
    bad = runner.invoke(cli, ["erase", "not ok", "--no-trigger"])
    assert bad.exit_code == 1 and "not a visitor id: 'not ok'" in bad.output
    unknown = runner.invoke(cli, ["erase", "v1", "--site", "no-such-site", "--no-trigger"])
    assert unknown.exit_code == 1 and "no such site" in unknown.output


def test_the_events_topic_keeps_no_event_past_eight_days_and_stack_up_sets_it_on_an_existing_topic(stack):
    """Kafka deletes whole segments: the retention and the segments' length bound how long an
    erased event stays. Provisioning sets them on a topic created before they were declared."""
    spec = topics()["events"]
    config = spec["config"]
    assert int(config["retention.ms"]) + int(config["segment.ms"]) <= 8 * 86_400_000
    name = f"events-retention-{uuid.uuid4().hex[:8]}"
    create_topics(stack, {name: {"partitions": 1}})  # Kafka's defaults: 7-day segments
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.servers)

    def described() -> dict[str, str]:
        found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=dict.fromkeys(config))],
                                       config_filter="all")
        return {k: v["value"] for k, v in found["topic"][name].items()}

    try:
        assert described()["segment.ms"] == "604800000"
        create_topics(stack, {name: spec})
        assert described() == config
    finally:
        admin.close()
        delete_topics(stack, [name])

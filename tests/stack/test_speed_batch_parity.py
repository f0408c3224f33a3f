"""The speed layer and the batch layer agree: the same in-order events through a speed
layer of its own (its own Kafka topic, so the test can use a past day and move the
watermark without disturbing other tests) and through the batch job over the archive that
speed layer wrote. Counts, sessions, bounces and durations equal exactly; unique visitors
within the HLL sketch's error bound. Then a late event: dropped and counted by the speed
layer, left to the batch layer."""
from __future__ import annotations

import json
import math
import random
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from batch_layer.job import run_day
from infra.clients import create_topics, kafka_producer
from infra.master import read_table
from infra.proc import CliProcess
from tests.helpers import wait_for
from tools.synthetic import archived_event
from views.goals import Goal
from views.sketches import union_estimate

pytestmark = pytest.mark.stack
UTC = timezone.utc
DAY = date(2026, 11, 2)
TZ = "Europe/Paris"
COUNTS = ("pageviews", "events", "clicks", "impressions")
SESSIONS = ("sessions", "bounces", "duration_ms", "session_pageviews")
# lg_k 12: relative standard error 1.04/sqrt(4096) = 1.6%; three of them.
HLL_BOUND = 3 * 1.04 / math.sqrt(4096)


def visits(rng: random.Random, site: str) -> list[dict]:
    """Visitors with one to three sessions each, gaps inside a session of 1-20 minutes."""
    zone = ZoneInfo(TZ)
    events = []
    for v in range(40):
        t = datetime(DAY.year, DAY.month, DAY.day, 10, tzinfo=zone) + timedelta(minutes=rng.randrange(240))
        for _ in range(rng.randint(1, 3)):
            for i in range(rng.choice([1, 1, 2, 3, 5])):
                kind = rng.choice(["pageview"] * 4 + ["click", "impression", "custom"]) if i else "pageview"
                props = {"element": rng.choice(["cta", "hero"])} if kind in ("click", "impression") else None
                events.append(archived_event(site, t, f"v{v}", kind, rng.choice(["/", "/pricing", "/blog/x"]), "",
                                    None, props, country=rng.choice(["FR", "DE"])))
                t += timedelta(minutes=rng.randint(1, 20), seconds=rng.randrange(60))
            t += timedelta(minutes=rng.randint(31, 90))  # the next session, if any
    events.sort(key=lambda e: e["ts"])
    with_dups = []
    for e in events:  # some deliveries retried right away, as the tracker does
        with_dups += [e, dict(e)] if rng.random() < 0.05 else [e]
    return with_dups


def speed_rows(cassandra, ks: str, site: str, view: str, columns: tuple) -> dict:
    out = {}
    for period in (DAY - timedelta(days=1)).isoformat(), DAY.isoformat(), (DAY + timedelta(days=1)).isoformat():
        for r in cassandra.execute(f"SELECT bucket, dim, {', '.join(columns)} FROM {ks}.speed_views WHERE site=%s "
                                   "AND view_name=%s AND granularity='minute' AND period=%s", (site, view, period)):
            out[(r.bucket.replace(tzinfo=UTC), r.dim)] = r
    return out


def batch_rows(cassandra, ks: str, site: str, view: str, granularity: str, columns: tuple) -> dict:
    period = {"minute": DAY.isoformat(), "hour": DAY.strftime("%Y-%m"), "day": DAY.strftime("%Y")}[granularity]
    periods = {period, (DAY - timedelta(days=1)).isoformat()} if granularity == "minute" else {period}
    out = {}
    for p in periods:
        for r in cassandra.execute(f"SELECT bucket, dim, {', '.join(columns)} FROM {ks}.batch_views WHERE site=%s "
                                   "AND view_name=%s AND granularity=%s AND period=%s", (site, view, granularity, p)):
            out[(r.bucket.replace(tzinfo=UTC), r.dim)] = r
    return out


def values(rows: dict, columns: tuple, hourly: bool = False) -> dict:
    """Measures per (bucket, dim); minute rows summed into hours if ``hourly`` (Paris
    hours are UTC hours: a whole-hour offset)."""
    out: dict = defaultdict(lambda: [0] * len(columns))
    for (bucket, dim), r in rows.items():
        vals = [getattr(r, c) for c in columns]
        if all(v is None for v in vals):
            continue
        key = (bucket.replace(minute=0) if hourly else bucket, dim)
        out[key] = [a + (b or 0) for a, b in zip(out[key], vals)]
    return {k: tuple(v) for k, v in out.items()}


def test_speed_views_equal_batch_views(stack, cassandra, registry, spark, tmp_path, log_dir):
    ks = stack.cassandra.keyspace
    topic = f"events-parity-{uuid.uuid4().hex[:8]}"
    create_topics(stack, {topic: {"partitions": 2}})
    site = f"speedbatch-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["x.test"], TZ)
    registry.add_goal(Goal(site, "Pricing", "page", "/pricing"))
    events = visits(random.Random(1102), site)
    last = max(e["ts"] for e in events)
    # Another site's event two hours on moves the watermark past the end of every session.
    flush = archived_event(f"flush-{site}", datetime.fromtimestamp(last / 1000 + 7200, UTC), "f")

    producer = kafka_producer(stack)
    for e in events + [flush]:
        producer.send(topic, key=f"{e['site']}:{e['visitor_id']}".encode(), value=json.dumps(e).encode())
    producer.flush()

    master = tmp_path / "master"
    speed = CliProcess("speed-parity", ["speed"], log_dir / "speed-parity.log", env={
        "PARALLAX_TOPIC_EVENTS": topic, "PARALLAX_MASTER_DIR": str(master),
        "PARALLAX_CHECKPOINT_DIR": str(tmp_path / "checkpoints"), "PARALLAX_STARTING_OFFSETS": "earliest"}).start()
    try:
        def archived() -> int:
            speed.check()
            return read_table(spark, master).where(f"site = '{site}'").count() if master.exists() else 0

        wait_for("the archive to hold every event", lambda: archived() == len(events), timeout=300, interval=3)
        run_day(spark, cassandra, ks, str(master), DAY, {site: TZ})
        batch_day = values(batch_rows(cassandra, ks, site, "traffic", "day", COUNTS + SESSIONS), COUNTS + SESSIONS)
        (day_totals,) = batch_day.values()

        def speed_caught_up() -> bool:
            speed.check()
            minutes = values(speed_rows(cassandra, ks, site, "traffic", COUNTS + SESSIONS), COUNTS + SESSIONS)
            return tuple(map(sum, zip(*minutes.values()))) == day_totals if minutes else False

        wait_for("the speed layer's sessions to close", speed_caught_up, timeout=300, interval=3)

        # Every minute's counts and session measures, exactly.
        for columns in (COUNTS, SESSIONS):
            assert values(speed_rows(cassandra, ks, site, "traffic", columns), columns) == \
                values(batch_rows(cassandra, ks, site, "traffic", "minute", columns), columns), columns
        # Breakdowns: speed minutes summed into hours equal the batch hours.
        for view, columns in (("page", COUNTS), ("element", COUNTS), ("goal", COUNTS), ("country", COUNTS),
                              ("entry_page", SESSIONS), ("exit_page", SESSIONS)):
            speed_hours = values(speed_rows(cassandra, ks, site, view, columns), columns, hourly=True)
            assert speed_hours == values(batch_rows(cassandra, ks, site, view, "hour", columns), columns), view
            assert len(speed_hours) > 1, view
        # Unique visitors: per minute and over the day (a union of minute sketches).
        speed_minutes = speed_rows(cassandra, ks, site, "traffic", ("visitors", "visitors_sketch"))
        batch_minutes = batch_rows(cassandra, ks, site, "traffic", "minute", ("visitors",))
        for key, r in batch_minutes.items():
            assert abs(speed_minutes[key].visitors - r.visitors) <= max(1, HLL_BOUND * r.visitors)
        exact_day = next(iter(batch_rows(cassandra, ks, site, "traffic", "day", ("visitors",)).values())).visitors
        assert exact_day == len({e["visitor_id"] for e in events})
        estimate = union_estimate([r.visitors_sketch for r in speed_minutes.values()])
        assert abs(estimate - exact_day) <= max(1, HLL_BOUND * exact_day)

        # A late event: behind the watermark, so the speed layer drops it and counts it.
        def dropped() -> int:
            today = datetime.now(UTC).date()
            return sum(r.dropped for r in cassandra.execute(
                f"SELECT dropped FROM {ks}.speed_dropped WHERE query='speed_views' AND day=%s", (today,)))

        before = dropped()
        late = archived_event(site, datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=ZoneInfo(TZ)), "late")
        producer.send(topic, key=b"late", value=json.dumps(late).encode())
        producer.flush()
        wait_for("the speed layer to count the late event", lambda: dropped() > before, timeout=120, interval=2)
        wait_for("the archive to keep the late event", lambda: archived() == len(events) + 1, timeout=120, interval=3)
        assert values(speed_rows(cassandra, ks, site, "traffic", COUNTS), COUNTS) == \
            values(batch_rows(cassandra, ks, site, "traffic", "minute", COUNTS), COUNTS)  # not counted by speed

        # Re-run, the batch layer counts it; the drift record shows what the speed layer
        # missed: one event and one session (the late visitor's), each in one minute.
        run_day(spark, cassandra, ks, str(master), DAY, {site: TZ})
        drift = {r.measure: r for r in cassandra.execute(
            f"SELECT measure, speed_total, batch_total, minutes_differing FROM {ks}.batch_drift "
            "WHERE site = %s AND day = %s", (site, DAY))}
        for measure in ("pageviews", "events", "sessions", "bounces"):
            d = drift[measure]
            assert (d.batch_total - d.speed_total, d.minutes_differing) == (1, 1), measure
        assert (drift["clicks"].batch_total, drift["clicks"].minutes_differing) == (drift["clicks"].speed_total, 0)
        assert drift["visitors"].batch_total == exact_day + 1
        assert abs(drift["visitors"].speed_total - exact_day) <= max(1, HLL_BOUND * exact_day)
    finally:
        producer.close()
        speed.stop()
    assert "Traceback" not in speed.log_path.read_text()

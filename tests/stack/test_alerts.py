"""Alerts on the real stack: traffic sent through the collector crosses a rule's threshold
and comes back; the evaluator (`parallax alerting`, killed with SIGKILL and restarted mid-episode)
fires once and resolves once; the notifications are stored in the recipients' centres,
pushed to their sockets (and to no one of another site), emailed to a real SMTP server
(aiosmtpd) and posted to a real HTTP receiver whose signature check passes."""
from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller

from batch_layer.job import run_day
from infra.clients import kafka_producer
from infra.master import append_events
from infra.proc import CliProcess, free_port
from serving_layer.alerting.delivery import Deliverer, send_digests, signature
from serving_layer.alerting.evaluator import Evaluator, publish
from serving_layer.stores import ServingStore
from speed_layer.queries import archive_frame
from store.accounts import Accounts, generate_password
from store.alerts import AlertRules, StoredRule
from store.archive import Archive
from store.notifications import Notification, Notifications
from tests.helpers import Socket, speed_totals, wait_for
from tools.synthetic import archived_event, tracker_event
from views.alerts import Rule

pytestmark = pytest.mark.stack
UTC = timezone.utc


class Inbox:
    """aiosmtpd's handler: every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture(scope="module")
def smtp() -> Any:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


class Receiver(BaseHTTPRequestHandler):
    posts: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Any:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Receiver.posts
    server.shutdown()


def _alerting(log_dir: Any, smtp_port: int, collector_url: str, name: str) -> CliProcess:
    return CliProcess(name, ["alerting"], log_dir / f"{name}.log", env={
        "PARALLAX_ALERTS_TICK_S": "2", "PARALLAX_ALERTS_MIN_INTERVAL_S": "0.5",
        "PARALLAX_ALERTS_SMTP_HOST": "127.0.0.1", "PARALLAX_ALERTS_SMTP_PORT": str(smtp_port),
        "PARALLAX_ALERTS_SMTP_TLS": "none", "PARALLAX_ALERTS_WEBHOOK_BACKOFF_S": "0.2",
        "PARALLAX_COLLECTOR_PORT": collector_url.rsplit(":", 1)[1]}).start()


def _member(accounts: Accounts, site: str, role: str) -> tuple[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.test"
    accounts.add_user(email, generate_password())
    accounts.grant(email, site, role)
    return email, accounts.create_token(email, "alerts test")[1]


def test_a_threshold_crossed_and_back_fires_once_and_resolves_once(
        stack, speed_layer, collector_url, serving_url, api, accounts, new_site, log_dir, smtp, webhook):
    site, other = new_site("alert"), new_site("alert-other")
    alice, alice_token = _member(accounts, site, "analyst")
    carol, _ = _member(accounts, site, "viewer")
    bob, bob_token = _member(accounts, other, "viewer")
    controller, inbox = smtp
    hook_url, posts = webhook
    as_alice = requests.Session()
    as_alice.headers["Authorization"] = f"Bearer {alice_token}"

    created = as_alice.post(f"{serving_url}/api/v1/sites/{site}/alerts", json={
        "name": "pageview burst", "measure": "pageviews", "window_s": 300, "condition": "above", "threshold": 5,
        "resolve_after_s": 0, "recipients": {alice: "email", carol: "webhook"}, "webhook_url": hook_url}, timeout=30)
    assert created.status_code == 201, created.text
    rule, secret = created.json(), created.json()["webhook_secret"]
    assert secret and rule["recipients"] == {alice: "email", carol: "webhook"}
    # Bob may not see the site: its rules are an unknown site's to him.
    refused = requests.get(f"{serving_url}/api/v1/sites/{site}/alerts",
                           headers={"Authorization": f"Bearer {bob_token}"}, timeout=30)
    assert refused.status_code == 404

    alice_socket, bob_socket = Socket(serving_url, token=alice_token), Socket(serving_url, token=bob_token)
    alice_socket.subscribe(site)
    bob_socket.subscribe(other)
    evaluator = _alerting(log_dir, controller.port, collector_url, "alerting")
    try:
        # Eight pageviews dated three minutes ago: in the 5-minute window (whole minutes,
        # ending with the current one) for two minutes at least — the speed layer's first
        # micro-batch can take a while — and out of it within three, so the condition
        # starts to hold and then stops. (Four minutes ago fell out of the window before
        # a slow first micro-batch counted them, when sent late in a minute.)
        at = datetime.now(UTC) - timedelta(minutes=3)
        events = [tracker_event(int(at.timestamp() * 1000) + i, f"https://example.test/p{i}", "pageview",
                                visitor_id=f"v{i % 3}") for i in range(8)]
        r = requests.post(f"{collector_url}/api/collect", json={"site": site, "events": events}, timeout=30)
        assert r.status_code == 202, r.text

        fired = wait_for("the rule to fire", lambda: [n for n in alice_socket.got("notification")
                                                        if n["kind"] == "alert.fired"], timeout=120)
        assert fired[0]["values"]["value"] == 8 and fired[0]["site"] == site  # the events sent, counted apart
        # The evaluator is killed mid-episode and starts again: the episode goes on, not again.
        evaluator.stop(signal.SIGKILL)
        evaluator = _alerting(log_dir, controller.port, collector_url, "alerting-restarted")
        resolved = wait_for("the rule to resolve", lambda: [n for n in alice_socket.got("notification")
                                                             if n["kind"] == "alert.resolved"], timeout=240)
        episode = fired[0]["values"]["episode_id"]
        assert resolved[0]["values"]["episode_id"] == episode and resolved[0]["values"]["value"] < 6
        wait_for("the email of each", lambda: len([1 for to, _ in inbox.messages if to == [alice]]) >= 2, timeout=60)
        wait_for("the webhook post of each", lambda: len(posts) >= 2, timeout=60)
        assert evaluator.alive(), evaluator.log_tail()
        threading.Event().wait(6)  # three more ticks: nothing more is sent
    finally:
        evaluator.stop()
        alice_socket.close()
        bob_socket.close()

    kinds = [n["kind"] for n in alice_socket.got("notification")]
    assert kinds == ["alert.fired", "alert.resolved"], kinds
    assert not bob_socket.got("notification")
    centre = as_alice.get(f"{serving_url}/api/v1/me/notifications", timeout=30).json()
    assert [n["kind"] for n in centre["notifications"]] == ["alert.resolved", "alert.fired"] and centre["unread"] == 2
    assert centre["notifications"][1]["link"].startswith(f"/api/v1/sites/{site}/report?")
    report = as_alice.get(f"{serving_url}{centre['notifications'][1]['link']}", timeout=30)
    assert report.status_code == 200  # the link shows the report it fired on
    assert as_alice.post(f"{serving_url}/api/v1/me/notifications/read", json={}, timeout=30).json() == {"unread": 0}

    # (The admins get the system alarms of the session by email too: only Alice's are this rule's.)
    to_alice = [m for to, m in inbox.messages if to == [alice]]
    assert not [m for to, m in inbox.messages if to in ([carol], [bob])]
    subjects = sorted(m["Subject"] for m in to_alice)
    assert subjects == sorted(f"[Parallax] pageview burst {v} on {site}" for v in ("fired", "resolved"))
    assert len(posts) == 2
    for headers, body in posts:
        signed = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Parallax-Signature"], signed)
        assert json.loads(body)["values"]["episode_id"] == episode
    deliveries = as_alice.get(f"{serving_url}/api/v1/sites/{site}/alerts/{rule['id']}/deliveries", timeout=30).json()
    assert sorted((d["channel"], d["ok"]) for d in deliveries["deliveries"]) == \
        [("email", True), ("email", True), ("webhook", True), ("webhook", True)]
    state = as_alice.get(f"{serving_url}/api/v1/sites/{site}/alerts/{rule['id']}", timeout=30).json()["state"]
    assert state["firing"] is False and state["episode_id"] == episode


def test_rules_are_validated_and_kept_per_site(serving_url, api, accounts, new_site):
    site = new_site("rules")
    stranger = f"stranger-{uuid.uuid4().hex[:8]}@example.test"
    accounts.add_user(stranger, generate_password())
    url = f"{serving_url}/api/v1/sites/{site}/alerts"
    bad = [({"measure": "sessions"}, "measure"), ({"window_s": 30}, "window_s"), ({"condition": "equals"}, "condition"),
           ({"condition": "spike", "threshold": 1}, "threshold"), ({"filters": "colour==red"}, "filters"),
           ({"recipients": {stranger: "live"}}, "recipients"), ({"webhook_url": "ftp://x"}, "webhook_url"),
           ({"recipients": {stranger: "pigeon"}}, "recipients")]
    base = {"name": "r", "measure": "pageviews", "window_s": 600, "condition": "above", "threshold": 10}
    for change, named in bad:
        r = api.post(url, json={**base, **change}, timeout=30)
        assert r.status_code == 400 and named in r.text, (change, r.text)
    made = api.post(url, json={**base, "measure": "goal:Signup", "filters": "country==FR"}, timeout=30)
    assert made.status_code == 201, made.text
    listed = api.get(url, timeout=30).json()["rules"]
    assert [(x["id"], x["measure"], x["filters"]) for x in listed] == [(made.json()["id"], "goal:Signup", "country==FR")]
    assert "webhook_secret" not in listed[0]
    assert api.delete(f"{url}/{made.json()['id']}", timeout=30).status_code == 204
    assert api.get(url, timeout=30).json()["rules"] == []
    assert api.delete(f"{url}/{made.json()['id']}", timeout=30).status_code == 404


def test_a_spike_against_the_batch_views_of_a_week_before(stack, spark, cassandra, speed_layer, collector_url,
                                                         accounts, new_site, tmp_path):
    """A spike rule's baseline is the same window a week earlier, from the batch views the
    batch job computed for that day; the window now, from the speed views. The evaluator
    (in this process, on the real store and Kafka) fires once, with both values."""
    site = new_site("spike")
    analyst, _ = _member(accounts, site, "analyst")
    now = datetime.now(UTC)
    week_ago = now - timedelta(days=7)
    # A week ago, three pageviews in the window; the batch job computes that day.
    past = [archived_event(site, week_ago - timedelta(minutes=2, seconds=i), f"old{i}") for i in range(3)]
    master = str(tmp_path / "master")
    append_events(archive_frame(spark.createDataFrame([(json.dumps(e),) for e in past], "value STRING")), master)
    run_day(spark, cassandra, stack.cassandra.keyspace, master, week_ago.date(), {site: "UTC"})
    if (week_ago - timedelta(minutes=3)).date() != week_ago.date():  # the window straddles midnight
        run_day(spark, cassandra, stack.cassandra.keyspace, master, week_ago.date() - timedelta(days=1),
                {site: "UTC"})
    # Now, twelve: four times the baseline, through the collector and the speed layer.
    events = [tracker_event(int((now - timedelta(minutes=1)).timestamp() * 1000) + i, "https://example.test/",
                            "pageview", visitor_id=f"new{i}") for i in range(12)]
    r = requests.post(f"{collector_url}/api/collect", json={"site": site, "events": events}, timeout=30)
    assert r.status_code == 202, r.text
    wait_for("the speed views", lambda: speed_totals(cassandra, stack.cassandra.keyspace, site, now)[0] >= 12,
             timeout=120)

    store = ServingStore(cassandra, stack.cassandra.keyspace, Archive(tmp_path / "master"), 10_000_000)
    rules = AlertRules(cassandra, stack.cassandra.keyspace)
    for name, factor in (("triple", 3.0), ("quintuple", 5.0)):
        rules.add(StoredRule(Rule(site, name, name, "pageviews", 600, "spike", factor, "week_ago", min_volume=5),
                             {analyst: "live"}))
    producer = kafka_producer(stack)
    try:
        evaluator = Evaluator(stack, store, producer)
        assert evaluator.site(site, force=True) == 1  # triple fires (12 >= 3 x 3), quintuple does not (12 < 15)
        assert evaluator.site(site, force=True) == 0  # and does not fire again
    finally:
        producer.close()
    triple, quintuple = rules.state(site, "triple"), rules.state(site, "quintuple")
    assert triple.episode.firing and (triple.last_value, triple.last_baseline) == (12, 3)
    assert not quintuple.episode.firing and quintuple.last_baseline == 3
    (n,) = Notifications(cassandra, stack.cassandra.keyspace).of_user(analyst)
    assert n.kind == "alert.fired" and n.values["baseline"] == 3 and n.values["value"] == 12


def test_the_daily_digest_is_emailed_once(stack, cassandra, accounts, new_site, smtp):
    """Notifications of rules a user chose the digest for, gathered in one email a day, sent
    once (to the real SMTP server), whatever number of delivery consumers try."""
    controller, inbox = smtp
    site = new_site("digest")
    dave, _ = _member(accounts, site, "viewer")
    erin, _ = _member(accounts, site, "viewer")
    settings = stack.replace(alerts={"smtp_host": "127.0.0.1", "smtp_port": controller.port, "smtp_tls": "none",
                                     "digest_hour_utc": 7})
    store = ServingStore(cassandra, stack.cassandra.keyspace, Archive(stack.paths.master_dir), 10_000_000)
    now = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    due = now.replace(hour=7)
    producer = kafka_producer(stack)
    try:
        for i, at in enumerate((due - timedelta(hours=3), due - timedelta(hours=2), due - timedelta(days=2))):
            publish(settings, store, producer, Notification(
                f"digest-test:{site}:{i}", site, "alert.fired", f"rule {i} fired on {site}", at,
                f"/api/v1/sites/{site}/report", {"value": i}, {dave: "digest", erin: "live"}, f"r{i}"))
    finally:
        producer.close()
    before = len(inbox.messages)
    assert send_digests(settings, store, now) >= 1
    assert send_digests(settings, store, now) == 0  # once a day
    assert send_digests(settings, store, due - timedelta(minutes=1)) == 0  # not before the hour
    mine = [m for to, m in inbox.messages[before:] if to == [dave]]
    assert len(mine) == 1 and not [m for to, m in inbox.messages[before:] if to == [erin]]
    body = mine[0].get_payload()
    assert "rule 0 fired" in body and "rule 1 fired" in body and "rule 2" not in body  # the last 24 hours only
    assert mine[0]["Subject"] == f"[Parallax] Your digest of {due.date()}: 2 notifications"


class Flaky(BaseHTTPRequestHandler):
    """A webhook receiver that fails twice (500, then a dropped connection) and then accepts."""
    calls: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls.append(body)
        if len(type(self).calls) == 2:
            self.connection.close()  # no answer at all
            return
        self.send_response(500 if len(type(self).calls) == 1 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_failing_webhook_is_retried_with_backoff_and_each_attempt_recorded(stack, cassandra, accounts, new_site,
                                                                             serving_url):
    site = new_site("flaky")
    analyst, token = _member(accounts, site, "analyst")
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    rules = AlertRules(cassandra, stack.cassandra.keyspace)
    stored = rules.add(StoredRule(Rule(site, "flaky", "flaky", "pageviews", 300, "above", 1), {analyst: "webhook"},
                                  url))
    settings = stack.replace(alerts={"webhook_backoff_s": 0.2, "webhook_attempts": 4})
    store = ServingStore(cassandra, stack.cassandra.keyspace, Archive(stack.paths.master_dir), 10_000_000)
    n = Notification(f"{site}:flaky:e1:fired", site, "alert.fired", "flaky fired", datetime.now(UTC), "", {"value": 2},
                     {analyst: "webhook"}, "flaky", url)
    try:
        deliverer = Deliverer(settings, store)
        deliverer.deliver(n)
        deliverer.deliver(n)  # a replay of the same notification: delivered already, not posted again
    finally:
        server.shutdown()
    assert len(Flaky.calls) == 3 and len(set(Flaky.calls)) == 1
    signed = "sha256=" + hmac.new(stored.webhook_secret.encode(), Flaky.calls[0], hashlib.sha256).hexdigest()
    assert signature(stored.webhook_secret, Flaky.calls[0]) == signed
    answer = requests.get(f"{serving_url}/api/v1/sites/{site}/alerts/flaky/deliveries",
                          headers={"Authorization": f"Bearer {token}"}, timeout=30).json()["deliveries"]
    attempts = sorted((d["attempt"], d["ok"], d["detail"].split(":")[0]) for d in answer)
    assert [(a, ok) for a, ok, _ in attempts] == [(1, False), (2, False), (3, True)]
    assert attempts[0][2] == "HTTP 500" and attempts[2][2] == "HTTP 200"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=120)


def test_parallax_alert_add_list_remove(stack, accounts, new_site, serving_url, api):
    site = new_site("cli-rules")
    member, _ = _member(accounts, site, "analyst")
    outsider = f"outsider-{uuid.uuid4().hex[:8]}@example.test"
    accounts.add_user(outsider, generate_password())
    refused = _cli("alert", "add", site, "nope", "--above", "10", "--notify", outsider)
    assert refused.returncode == 1 and "not a member" in refused.stderr
    assert _cli("alert", "add", site, "two", "--above", "1", "--below", "2", "--notify", member).returncode == 1
    made = _cli("alert", "add", site, "signups drop", "--measure", "goal:Signup", "--window", "1h", "--drop", "2",
                "--baseline", "trailing", "--min-volume", "20", "--notify", f"{member}:email",
                "--webhook", "https://hooks.example.test/x", "--notify", f"{member}:webhook")
    assert made.returncode == 0, made.stderr
    rule_id = made.stdout.split()[2]
    assert "webhook secret (shown once" in made.stdout
    listed = _cli("alert", "list", site)
    assert rule_id in listed.stdout and "signups drop: goal:Signup over 3600s drop 2" in listed.stdout
    served = api.get(f"{serving_url}/api/v1/sites/{site}/alerts/{rule_id}", timeout=30).json()
    assert (served["window_s"], served["baseline"], served["min_volume"], served["created_by"]) == \
        (3600, "trailing", 20, "cli")
    assert _cli("alert", "remove", site, rule_id).returncode == 0
    assert _cli("alert", "remove", site, rule_id).returncode == 1

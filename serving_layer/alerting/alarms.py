"""System alarms, checked every ``tick_s``, to admins (by email where SMTP is set, and live)
and to a site's members where one site is concerned:

- the speed layer stalled (behind Kafka, its offsets unmoved for ``speed_stalled_after_s``)
  or behind by more than ``speed_behind_s``;
- the collector refusing events (its health: Kafka or Cassandra away) for more than
  ``collector_refusing_after_s``;
- incidents recorded by others: a failed batch run (the DAGs' failure callback), a
  recomputed day's drift over the threshold (the batch job).

The first two are episodes like a rule's (``views.alerts.step``, the state in Cassandra
under "(system)" and the rule "system:<alarm>"): one notification when the alarm starts,
one when it ends, whichever evaluator sees it first.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import requests
from kafka import KafkaProducer

from infra.clients import kafka_producer
from infra.settings import Settings
from serving_layer.alerting.evaluator import publish
from serving_layer.errors import STORE_DOWN
from serving_layer.freshness import FreshnessMonitor
from serving_layer.stores import ServingStore
from store.notifications import Notification
from views.alerts import Rule, step

log = logging.getLogger(__name__)
SYSTEM = ""  # the "site" of an alarm about the whole system
STATE_KEY = "(system)"  # its episodes' partition in alert_state (not a valid site id; a key is never empty)


def recipients(store: ServingStore, site: str) -> dict[str, str]:
    """Admins by email (and live), and the site's members live, for an alarm about ``site``."""
    who = {u.email: "email" for u in store.accounts.users() if u.is_admin}
    if site:
        for email in store.accounts.members(site):
            who.setdefault(email, "live")
    return who


class Alarms:
    def __init__(self, settings: Settings, store: ServingStore, producer: KafkaProducer) -> None:
        self.settings, self.store, self.producer = settings, store, producer
        stalled = settings.replace(serving={"stall_after_s": settings.alerts.speed_stalled_after_s})
        self.freshness = FreshnessMonitor(stalled, lambda: store.diagnostics)
        self.refusing_since: float | None = None

    def episode(self, name: str, holds: bool, title: str, values: dict[str, Any]) -> str | None:
        """Move the alarm's episode; publish its start or end. The transition, if any. As a
        rule's, the notification is written with the transition and published after: one
        not published (Kafka away) is published at the next check."""
        alarm = Rule(STATE_KEY, f"system:{name}", title, "events", 300, "above", 0, resolve_after_s=0)
        state = self.store.alerts.state(STATE_KEY, alarm.rule_id)
        if state.unsent:
            self._publish(Notification.from_json(json.loads(state.unsent)), alarm.rule_id, state.version)
            state = self.store.alerts.state(STATE_KEY, alarm.rule_id)
        now = datetime.now(timezone.utc)
        episode, transition = step(alarm, state.episode, holds, now, uuid.uuid4().hex[:12])
        if transition is None and episode == state.episode:
            return None
        notice = None
        if transition is not None:
            verb = "started" if transition == "fired" else "ended"
            notice = Notification(f"system:{name}:{episode.episode_id}:{transition}", SYSTEM, f"system.{name}",
                                  f"{title}: {verb}", now, "/api/v1/sites", values, recipients(self.store, SYSTEM))
        unsent = json.dumps(notice.as_json()) if notice else None
        if not self.store.alerts.save_state(STATE_KEY, alarm.rule_id, state, episode, now, None, None, unsent):
            return None
        if notice is not None:
            log.warning("system alarm %s: %s", notice.title, values)
            self._publish(notice, alarm.rule_id, state.version + 1)
        return transition

    def _publish(self, n: Notification, rule_id: str, version: int) -> None:
        publish(self.settings, self.store, self.producer, n)
        self.store.alerts.mark_sent(STATE_KEY, rule_id, version)

    def check_speed(self) -> None:
        speed = self.freshness.measure_now()
        if speed.problem:
            return  # Kafka or Cassandra away: the collector's alarm says so
        values = {"lag_records": speed.lag_records, "lag_seconds": speed.lag_seconds,
                  "processed_through": speed.processed_through.isoformat() if speed.processed_through else None,
                  "stalled_since": speed.stalled_since.isoformat() if speed.stalled_since else None}
        self.episode("speed_stalled", speed.stalled, "The speed layer has stalled", values)
        behind = (speed.lag_seconds or 0) > self.settings.alerts.speed_behind_s
        self.episode("speed_behind", behind, f"The speed layer is more than {self.settings.alerts.speed_behind_s:.0f}"
                     " s behind Kafka", values)

    def check_collector(self) -> None:
        url = f"http://127.0.0.1:{self.settings.collector.port}/health"
        try:
            r = requests.get(url, timeout=5)
            state = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
            refusing = r.status_code == 503
        except requests.RequestException:
            return  # not running here: nothing to say of its refusals
        now = time.monotonic()
        self.refusing_since = (self.refusing_since or now) if refusing else None
        long_enough = self.refusing_since is not None and \
            now - self.refusing_since >= self.settings.alerts.collector_refusing_after_s
        self.episode("collector_refusing", long_enough, "The collector is refusing events",
                     {k: v for k, v in state.items() if k in ("kafka", "cassandra")})

    def check_incidents(self) -> None:
        incidents = self.store.incidents
        for incident in incidents.recent(datetime.now(timezone.utc)):
            if incident.notified:
                continue
            n = Notification(f"incident:{incident.id}", incident.site, f"system.{incident.kind}", incident.title,
                             incident.at, f"/api/v1/sites/{incident.site}/drift" if incident.kind == "drift" else "",
                             incident.values, recipients(self.store, incident.site))
            publish(self.settings, self.store, self.producer, n)
            incidents.mark_notified(incident)
            log.warning("system alarm %s: %s", incident.kind, incident.title)

    def tick(self) -> None:
        for check in (self.check_speed, self.check_collector, self.check_incidents):
            try:
                check()
            except STORE_DOWN:
                raise
            except Exception:  # one check's failure stops no other
                log.exception("system alarm check %s failed", check.__name__)


def run(settings: Settings, store: ServingStore, stop: threading.Event) -> None:
    producer = kafka_producer(settings)
    alarms = Alarms(settings, store, producer)
    log.info("system alarms: checked every %.0f s", settings.alerts.tick_s)
    try:
        while not stop.is_set():
            try:
                alarms.tick()
            except STORE_DOWN as exc:
                log.warning("system alarms: Cassandra unavailable (%s)", exc)
            stop.wait(settings.alerts.tick_s)
    finally:
        producer.close(timeout=10)

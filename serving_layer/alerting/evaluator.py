"""The alert evaluator: a site's rules evaluated on each of its live updates (Kafka
`metrics.live`), at most every ``min_interval_s``, and every ``tick_s`` whatever arrives.

Evaluators scale out through one Kafka consumer group: each reads some partitions of
`metrics.live` (keyed by site), so each site's rules are evaluated by one of them; its
ticks cover the sites of its partitions. A rule's episode lives in Cassandra, and every
transition is a lightweight transaction (``store.alerts``): an evaluator that stops, or
two that overlap during a rebalance, neither lose nor repeat an episode. A transition's
notification is written with the transaction, then stored, published and marked sent: an
evaluator stopped in between publishes it again when it starts (the same id, so it is
stored once and delivered once).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from infra.clients import group_consumer, kafka_producer
from infra.settings import Settings
from serving_layer.alerting import measure
from serving_layer.errors import STORE_DOWN
from serving_layer.stores import ServingStore
from store.alerts import StoredRule
from store.notifications import Notification
from views.alerts import judge, step

log = logging.getLogger(__name__)
GROUP = "parallax-alerts"


def partition_of(site: str, partitions: int) -> int:
    """The partition of `metrics.live` a site's updates go to (kafka-python's default
    partitioner, as the speed layer's and the tail's producers use)."""
    return (murmur2(site.encode()) & 0x7FFFFFFF) % partitions


def notification_for(stored: StoredRule, transition: str, episode_id: str, now: datetime, value: float,
                     baseline: float | None, why: str, link: str) -> Notification:
    rule = stored.rule
    verb = "fired" if transition == "fired" else "resolved"
    return Notification(
        id=f"{rule.site}:{rule.rule_id}:{episode_id}:{verb}", site=rule.site, kind=f"alert.{verb}",
        title=f"{rule.name} {verb} on {rule.site}", created_at=now, link=link,
        values={"measure": rule.measure, "window_s": rule.window_s, "condition": rule.condition,
                "threshold": rule.threshold, "value": value, "baseline": baseline, "why": why,
                "filters": rule.filters, "episode_id": episode_id},
        recipients=dict(stored.recipients), rule_id=rule.rule_id, webhook_url=stored.webhook_url)


class Evaluator:
    """Evaluates rules against the store and publishes what they decide."""

    def __init__(self, settings: Settings, store: ServingStore, producer: KafkaProducer,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.settings, self.store, self.producer, self.clock = settings, store, producer, clock
        self._last: dict[str, float] = {}
        self.transitions = 0

    def site(self, site: str, *, force: bool = False) -> int:
        """Evaluate the site's rules (unless evaluated less than ``min_interval_s`` ago);
        how many transitions were published."""
        now_mono = time.monotonic()
        if not force and now_mono - self._last.get(site, -1e9) < self.settings.alerts.min_interval_s:
            return 0
        self._last[site] = now_mono
        published = 0
        for stored in self.store.alerts.rules(site):
            if not force and measure.from_archive(stored.rule):
                continue  # read from the archive (DuckDB): on the ticks only, not on every update
            try:
                published += self.rule(stored)
            except STORE_DOWN:
                raise
            except Exception:  # one rule's failure (a bad filter, a missing archive) stops no other
                log.exception("alert rule %s of %s could not be evaluated", stored.rule.rule_id, site)
        return published

    def rule(self, stored: StoredRule) -> int:
        rule, alerts = stored.rule, self.store.alerts
        state = alerts.state(rule.site, rule.rule_id)
        if state.unsent:  # decided before a stop, not published: publish it now
            self._publish(Notification.from_json(json.loads(state.unsent)), rule.site, rule.rule_id, state.version)
            state = alerts.state(rule.site, rule.rule_id)
        now = self.clock()
        value, baseline = measure.evaluate(self.store, rule, now)
        verdict = judge(rule, value, baseline)
        episode, transition = step(rule, state.episode, verdict.holds, now, uuid.uuid4().hex[:12])
        notice = None
        if transition is not None:
            notice = notification_for(stored, transition, episode.episode_id, now, value, baseline, verdict.why,
                                      measure.report_link(rule, now))
        unsent = json.dumps(notice.as_json()) if notice else None
        if not alerts.save_state(rule.site, rule.rule_id, state, episode, now, value, baseline, unsent):
            log.info("alert rule %s of %s: another evaluation wrote first; its decision stands", rule.rule_id,
                     rule.site)
            return 0
        if notice is None:
            return 0
        log.info("alert %s (%s) %s on %s: %s", rule.name, rule.rule_id, transition, rule.site, verdict.why)
        self._publish(notice, rule.site, rule.rule_id, state.version + 1)
        self.transitions += 1
        return 1

    def _publish(self, n: Notification, site: str, rule_id: str, version: int) -> None:
        """Store ``n`` (its id makes a repeat the same rows), publish it, mark it sent."""
        publish(self.settings, self.store, self.producer, n)
        self.store.alerts.mark_sent(site, rule_id, version)


def publish(settings: Settings, store: ServingStore, producer: KafkaProducer, n: Notification) -> None:
    """Into the notification log and each recipient's centre, then on Kafka `notifications`
    (the serving processes push it live; the delivery consumer emails and posts it)."""
    store.notifications.record(n)
    for email in n.recipients:
        store.notifications.deliver_to(email, n)
    producer.send(settings.kafka.topic_notifications, key=(n.site or "system").encode(),
                  value=json.dumps(n.as_json()).encode())
    producer.flush(timeout=30)


def run(settings: Settings, store: ServingStore, stop: threading.Event) -> None:
    """Consume `metrics.live` in the evaluators' group until ``stop``; evaluate the sites
    of this evaluator's partitions every ``tick_s`` too."""
    producer = kafka_producer(settings)
    evaluator = Evaluator(settings, store, producer)
    topic = settings.kafka.topic_live
    consumer = group_consumer(settings, [topic], GROUP, auto_offset_reset="latest", enable_auto_commit=True,
                              session_timeout_ms=10000, heartbeat_interval_ms=3000, client_id="parallax-alerts")
    log.info("alert evaluator: evaluating rules on %s (consumer group %s), and every %.0f s", topic, GROUP,
             settings.alerts.tick_s)
    last_tick = 0.0
    try:
        while not stop.is_set():
            try:
                with_rules = None
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        try:
                            update = json.loads(record.value)
                        except ValueError:
                            continue  # not an update: skipped
                        if not isinstance(update, dict) or update.get("source") == "tail":
                            continue  # the rules read the speed views; the tail's counts are not in them
                        if with_rules is None:
                            with_rules = store.alerts.sites_with_rules()
                        if update.get("site") in with_rules:
                            evaluator.site(update["site"])
                if time.monotonic() - last_tick >= settings.alerts.tick_s:
                    last_tick = time.monotonic()
                    mine = {tp.partition for tp in consumer.assignment()}
                    partitions = len(consumer.partitions_for_topic(topic) or ()) or 1
                    for site in sorted(store.alerts.sites_with_rules()):
                        if partition_of(site, partitions) in mine:
                            evaluator.site(site, force=True)
            except STORE_DOWN as exc:
                log.warning("alert evaluator: Cassandra unavailable (%s); retrying in 5 s", exc)
                stop.wait(5)
    finally:
        consumer.close()
        producer.close(timeout=10)

"""Delivery of notifications by email (SMTP) and webhook (an HTTP POST of the notification
as JSON, signed with HMAC-SHA256 of the body with the rule's secret, retried with
exponential backoff). Every attempt is recorded (``store.notifications.deliveries``, shown
by the API); a delivery that succeeded once is not made again when Kafka replays its
notification. One consumer group reads `notifications`: delivery scales out like the
evaluator.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import threading
import time
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage

import requests

from infra.clients import group_consumer
from infra.settings import AlertSettings, Settings
from serving_layer.errors import STORE_DOWN
from serving_layer.stores import ServingStore
from store.notifications import Notification

log = logging.getLogger(__name__)
GROUP = "parallax-delivery"
SIGNATURE_HEADER = "X-Parallax-Signature"


def signature(secret: str, body: bytes) -> str:
    """The value of the ``X-Parallax-Signature`` header: ``sha256=<hex HMAC of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def public_url(settings: Settings) -> str:
    return (settings.alerts.public_url or f"http://127.0.0.1:{settings.serving.port}").rstrip("/")


def email_message(settings: Settings, n: Notification, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[Parallax] {n.title}"
    msg["From"] = settings.alerts.smtp_from
    msg["To"] = to
    msg["X-Parallax-Notification"] = n.id
    lines = [n.title, "", *(f"{k}: {v}" for k, v in n.values.items() if v not in (None, ""))]
    if n.link:
        lines += ["", f"See it: {public_url(settings)}{n.link}"]
    msg.set_content("\n".join(lines))
    return msg


def send_email(alerts: AlertSettings, msg: EmailMessage) -> None:
    if alerts.smtp_tls == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(alerts.smtp_host, alerts.smtp_port, timeout=30,
                                              context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(alerts.smtp_host, alerts.smtp_port, timeout=30)
    with smtp:
        if alerts.smtp_tls == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if alerts.smtp_user:
            smtp.login(alerts.smtp_user, alerts.smtp_password.get_secret_value() if alerts.smtp_password else "")
        smtp.send_message(msg)


class Deliverer:
    def __init__(self, settings: Settings, store: ServingStore, stop: threading.Event | None = None) -> None:
        self.settings, self.store = settings, store
        self.stop = stop or threading.Event()

    def _done(self, n: Notification, channel: str, target: str) -> bool:
        if not n.rule_id and not n.site:
            return False
        return any(d["notification_id"] == n.id and d["channel"] == channel and d["target"] == target and d["ok"]
                   for d in self.store.notifications.deliveries(n.site, n.rule_id, limit=500))

    def deliver(self, n: Notification) -> None:
        emails = sorted(e for e, channel in n.recipients.items() if channel == "email")
        if emails and not self.settings.alerts.smtp_host:
            log.warning("notification %s: %d recipient(s) chose email, but no SMTP host is set "
                        "(PARALLAX_ALERTS_SMTP_HOST)", n.id, len(emails))
            emails = []
        for to in emails:
            if self._done(n, "email", to):
                continue
            try:
                send_email(self.settings.alerts, email_message(self.settings, n, to))
                self.store.notifications.record_delivery(n, "email", to, 1, True, "sent")
                log.info("notification %s emailed to %s", n.id, to)
            except (OSError, smtplib.SMTPException) as exc:
                self.store.notifications.record_delivery(n, "email", to, 1, False, f"{type(exc).__name__}: {exc}")
                log.warning("notification %s: email to %s failed: %s", n.id, to, exc)
        if "webhook" in n.recipients.values() and n.webhook_url and not self._done(n, "webhook", n.webhook_url):
            self.post(n)

    def post(self, n: Notification) -> bool:
        stored = self.store.alerts.rule(n.site, n.rule_id) if n.rule_id else None
        secret = stored.webhook_secret if stored else ""
        body = json.dumps({k: v for k, v in n.as_json().items() if k not in ("recipients", "webhook_url")}).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Parallax-Webhook/1",
                   "X-Parallax-Notification": n.id, SIGNATURE_HEADER: signature(secret, body)}
        alerts = self.settings.alerts
        for attempt in range(1, alerts.webhook_attempts + 1):
            try:
                r = requests.post(n.webhook_url, data=body, headers=headers, timeout=alerts.webhook_timeout_s,
                                  allow_redirects=False)
                ok, detail = r.status_code < 300, f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            self.store.notifications.record_delivery(n, "webhook", n.webhook_url, attempt, ok, detail)
            if ok:
                log.info("notification %s posted to its webhook (attempt %d)", n.id, attempt)
                return True
            delay = alerts.webhook_backoff_s * 2 ** (attempt - 1)
            log.warning("notification %s: webhook attempt %d/%d failed (%s)%s", n.id, attempt,
                        alerts.webhook_attempts, detail,
                        f"; again in {delay:.0f} s" if attempt < alerts.webhook_attempts else "; giving up")
            if attempt < alerts.webhook_attempts and self.stop.wait(delay):
                return False
        return False


def digest_message(settings: Settings, to: str, day: date, items: list[Notification]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[Parallax] Your digest of {day}: {len(items)} notification{'s' * (len(items) != 1)}"
    msg["From"] = settings.alerts.smtp_from
    msg["To"] = to
    lines = [f"What happened in the 24 hours to {settings.alerts.digest_hour_utc:02d}:00 UTC on {day}:", ""]
    for n in items:
        lines.append(f"- {n.created_at:%Y-%m-%d %H:%M} UTC  {n.title}")
        if n.link:
            lines.append(f"  {public_url(settings)}{n.link}")
    msg.set_content("\n".join(lines))
    return msg


def send_digests(settings: Settings, store: ServingStore, now: datetime) -> int:
    """Once ``now`` has passed the digest hour: to each user who chose the digest for some
    rule, one email of those notifications of the 24 hours before (once per user and day,
    whichever delivery consumer gets there first). How many were sent."""
    alerts = settings.alerts
    due = now.replace(hour=alerts.digest_hour_utc, minute=0, second=0, microsecond=0)
    if now < due or not alerts.smtp_host:
        return 0
    sent = 0
    for user in store.accounts.users():
        items = []
        for mine in store.notifications.of_user(user.email, limit=500):
            if due - timedelta(days=1) <= mine.created_at < due:
                logged = store.notifications.logged(mine.id)
                if logged is not None and logged.recipients.get(user.email) == "digest":
                    items.append(logged)
        if items and store.notifications.claim_digest(user.email, due.date(), len(items)):
            items.sort(key=lambda n: n.created_at)
            try:
                send_email(alerts, digest_message(settings, user.email, due.date(), items))
            except (OSError, smtplib.SMTPException):
                store.notifications.release_digest(user.email, due.date())  # the next try sends it
                raise
            log.info("digest of %s sent to %s (%d notifications)", due.date(), user.email, len(items))
            sent += 1
    return sent


def run(settings: Settings, store: ServingStore, stop: threading.Event) -> None:
    """Deliver every notification published on Kafka `notifications` until ``stop``; the
    group's offsets move only past what was delivered (or tried)."""
    deliverer = Deliverer(settings, store, stop)
    topic = settings.kafka.topic_notifications
    consumer = group_consumer(settings, [topic], GROUP, auto_offset_reset="earliest", enable_auto_commit=False,
                              max_poll_records=50, max_poll_interval_ms=600_000, client_id="parallax-delivery")
    log.info("delivery: emailing and posting what %s carries (consumer group %s)", topic, GROUP)
    digests_checked = 0.0
    try:
        while not stop.is_set():
            if time.monotonic() - digests_checked >= 60:
                digests_checked = time.monotonic()
                try:
                    send_digests(settings, store, datetime.now(timezone.utc))
                except (*STORE_DOWN, OSError, smtplib.SMTPException) as exc:
                    log.warning("delivery: digests not sent (%s); trying again in a minute", exc)
            batch = consumer.poll(timeout_ms=500)
            try:
                for records in batch.values():
                    for record in records:
                        try:
                            n = Notification.from_json(json.loads(record.value))
                        except (ValueError, KeyError, TypeError) as exc:  # not a notification: skipped, not fatal
                            log.warning("delivery: skipped %s offset %d, not a notification (%s)", record.topic,
                                        record.offset, exc)
                            continue
                        deliverer.deliver(n)
                if batch:
                    consumer.commit()
            except STORE_DOWN as exc:
                log.warning("delivery: Cassandra unavailable (%s); retrying in 5 s", exc)
                for tp in batch:  # read them again
                    consumer.seek(tp, batch[tp][0].offset)
                time.sleep(5)
    finally:
        consumer.close()

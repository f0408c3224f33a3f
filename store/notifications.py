"""Notifications: each once (``notification_log``, by its id), each user's centre
(``user_notifications``, newest first) and the attempts to deliver them by email or
webhook (``deliveries``). Rows live 90 days (30 for deliveries)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from store.cql import Tables
from views.catalogue import as_utc

MAX_LISTED = 500  # a user's centre lists at most this many (newest first); so does the unread count


@dataclass(frozen=True)
class Notification:
    """What happened, for whom: ``id`` is stable for one event (a rule's episode and its
    transition), so that a replay finds it already recorded."""
    id: str
    site: str  # "" for an alarm about the whole system
    kind: str  # "alert.fired", "alert.resolved", "system.<alarm>"
    title: str
    created_at: datetime
    link: str = ""  # the report that shows it (a path of the serving layer)
    values: dict[str, Any] = field(default_factory=dict)  # what fired it
    recipients: dict[str, str] = field(default_factory=dict)  # email -> channel
    rule_id: str = ""
    webhook_url: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "site": self.site, "kind": self.kind, "title": self.title,
                "created_at": self.created_at.isoformat(), "link": self.link, "values": self.values,
                "recipients": self.recipients, "rule_id": self.rule_id, "webhook_url": self.webhook_url}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Notification:
        return cls(data["id"], data.get("site", ""), data["kind"], data["title"],
                   datetime.fromisoformat(data["created_at"]), data.get("link", ""), data.get("values", {}),
                   data.get("recipients", {}), data.get("rule_id", ""), data.get("webhook_url", ""))


@dataclass(frozen=True)
class UserNotification:
    id: str
    site: str
    kind: str
    title: str
    created_at: datetime
    link: str
    values: dict[str, Any]
    read: bool


class Notifications(Tables):

    def record(self, n: Notification) -> bool:
        """Record ``n`` once: True the first time, False if it was recorded before (a replay)."""
        result = self.execute("INSERT INTO {ks}.notification_log (id, site, kind, created_at, body) "
                              "VALUES (?, ?, ?, ?, ?) IF NOT EXISTS",
                              (n.id, n.site, n.kind, n.created_at, json.dumps(n.as_json())))
        return bool(result.one()[0])

    def deliver_to(self, email: str, n: Notification) -> None:
        """Into ``email``'s notification centre (an upsert: a replay writes the same row)."""
        self.execute("INSERT INTO {ks}.user_notifications (email, created_at, id, site, kind, title, body, link, read) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, false)",
                     (email, n.created_at, n.id, n.site, n.kind, n.title, json.dumps(n.values), n.link))

    def of_user(self, email: str, *, unread_only: bool = False, limit: int = 50) -> list[UserNotification]:
        rows = self.execute("SELECT * FROM {ks}.user_notifications WHERE email = ? LIMIT ?", (email, MAX_LISTED))
        out = [UserNotification(r.id, r.site or "", r.kind, r.title, as_utc(r.created_at), r.link or "",
                                json.loads(r.body or "{}"), bool(r.read)) for r in rows]
        if unread_only:
            out = [n for n in out if not n.read]
        return out[:limit]

    def unread(self, email: str) -> int:
        rows = self.execute("SELECT read FROM {ks}.user_notifications WHERE email = ? LIMIT ?", (email, MAX_LISTED))
        return sum(1 for r in rows if not r.read)

    def mark_read(self, email: str, ids: set[str] | None = None) -> int:
        """Mark ``ids`` (all, for None) of the user's notifications read; how many changed."""
        rows = self.execute("SELECT created_at, id, read FROM {ks}.user_notifications WHERE email = ? LIMIT ?",
                            (email, MAX_LISTED))
        changed = 0
        for r in rows:
            if not r.read and (ids is None or r.id in ids):
                self.execute("UPDATE {ks}.user_notifications SET read = true "
                             "WHERE email = ? AND created_at = ? AND id = ?", (email, r.created_at, r.id))
                changed += 1
        return changed

    def logged(self, notification_id: str) -> Notification | None:
        """A notification as it was recorded (with its recipients and their channels)."""
        row = self.execute("SELECT body FROM {ks}.notification_log WHERE id = ?", (notification_id,)).one()
        return Notification.from_json(json.loads(row.body)) if row is not None else None

    def claim_digest(self, email: str, day: date, items: int) -> bool:
        """The right to send ``email``'s digest of ``day``: True once (a lightweight transaction)."""
        result = self.execute("INSERT INTO {ks}.digests (email, day, sent_at, items) VALUES (?, ?, ?, ?) IF NOT EXISTS",
                              (email, day, datetime.now(timezone.utc), items))
        return bool(result.one()[0])

    def release_digest(self, email: str, day: date) -> None:
        self.execute("DELETE FROM {ks}.digests WHERE email = ? AND day = ? IF EXISTS", (email, day))

    def record_delivery(self, n: Notification, channel: str, target: str, attempt: int, ok: bool,
                        detail: str) -> None:
        self.execute("INSERT INTO {ks}.deliveries (site, rule_id, at, notification_id, channel, target, attempt, ok, "
                     "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (n.site, n.rule_id, datetime.now(timezone.utc), n.id, channel, target, attempt, ok, detail[:500]))

    def deliveries(self, site: str, rule_id: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.execute("SELECT * FROM {ks}.deliveries WHERE site = ? AND rule_id = ? LIMIT ?",
                            (site, rule_id, limit))
        return [{"at": as_utc(r.at).isoformat(), "notification_id": r.notification_id, "channel": r.channel,
                 "target": r.target, "attempt": r.attempt, "ok": r.ok, "detail": r.detail} for r in rows]


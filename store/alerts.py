"""Alert rules and their episodes' state (tables ``alert_rules`` and ``alert_state``).

A transition of an episode (fired, resolved) is a lightweight transaction on the state's
``version``: of two evaluators deciding on the same state, or of an evaluator and its own
replay after a restart, exactly one writes it, so an episode never fires or resolves twice.
"""
from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from store.cql import Tables
from views.alerts import CHANNELS, Episode, Rule, validate_rule
from views.catalogue import as_utc


@dataclass(frozen=True)
class StoredRule:
    rule: Rule
    recipients: dict[str, str] = field(default_factory=dict)  # email -> channel
    webhook_url: str = ""
    created_at: datetime | None = None
    webhook_secret: str = ""  # signs the webhook's bodies (HMAC-SHA256); shown when the rule is added


@dataclass(frozen=True)
class StoredState:
    episode: Episode
    version: int  # 0 before the first evaluation
    evaluated_at: datetime | None = None
    last_value: float | None = None
    last_baseline: float | None = None
    unsent: str | None = None  # a decided transition's notification (JSON), not yet published


def new_rule_id() -> str:
    return uuid.uuid4().hex[:12]


class AlertRules(Tables):
    """Rules per site, and each rule's episode state."""

    def add(self, stored: StoredRule) -> StoredRule:
        """Add (or replace, by id) a rule: validated first (``views.alerts.validate_rule``)."""
        rule = validate_rule(stored.rule)
        for email, channel in stored.recipients.items():
            if channel not in CHANNELS:
                raise ValueError(f"recipient {email}: channel {channel!r}, use one of {', '.join(CHANNELS)}")
        if "webhook" in stored.recipients.values() and not stored.webhook_url:
            raise ValueError("a recipient wants a webhook but the rule has no webhook_url")
        now = datetime.now(timezone.utc)
        secret = stored.webhook_secret or (secrets.token_urlsafe(32) if stored.webhook_url else "")
        self.execute(
            "INSERT INTO {ks}.alert_rules (site, rule_id, name, measure, window_s, condition, threshold, baseline, "
            "filters, min_volume, resolve_after_s, recipients, webhook_url, webhook_secret, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rule.site, rule.rule_id, rule.name, rule.measure, rule.window_s, rule.condition, rule.threshold,
             rule.baseline, rule.filters, rule.min_volume, rule.resolve_after_s, dict(stored.recipients),
             stored.webhook_url, secret, rule.created_by, now))
        return StoredRule(rule, dict(stored.recipients), stored.webhook_url, now, secret)

    def rules(self, site: str) -> list[StoredRule]:
        rows = self.execute("SELECT * FROM {ks}.alert_rules WHERE site = ?", (site,))
        return sorted((_rule(r) for r in rows), key=lambda s: (s.rule.name, s.rule.rule_id))

    def rule(self, site: str, rule_id: str) -> StoredRule | None:
        row = self.execute("SELECT * FROM {ks}.alert_rules WHERE site = ? AND rule_id = ?", (site, rule_id)).one()
        return _rule(row) if row is not None else None

    def sites_with_rules(self) -> set[str]:
        return {r.site for r in self.execute("SELECT DISTINCT site FROM {ks}.alert_rules")}

    def remove(self, site: str, rule_id: str) -> bool:
        """Remove a rule and its state; False if there was none."""
        if self.rule(site, rule_id) is None:
            return False
        self.execute("DELETE FROM {ks}.alert_rules WHERE site = ? AND rule_id = ?", (site, rule_id))
        self.execute("DELETE FROM {ks}.alert_state WHERE site = ? AND rule_id = ?", (site, rule_id))
        return True

    def state(self, site: str, rule_id: str) -> StoredState:
        row = self.execute("SELECT * FROM {ks}.alert_state WHERE site = ? AND rule_id = ?", (site, rule_id)).one()
        if row is None:
            return StoredState(Episode(), 0)
        return StoredState(Episode(bool(row.firing), row.episode_id or "", _utc(row.started_at),
                                   _utc(row.clear_since)),
                           row.version or 0, _utc(row.evaluated_at), row.last_value, row.last_baseline, row.unsent)

    def save_state(self, site: str, rule_id: str, before: StoredState, after: Episode, now: datetime,
                   value: float | None, baseline: float | None, unsent: str | None) -> bool:
        """Write ``after`` (and ``unsent``, a decided transition's notification) if the
        state is still ``before`` (its version); False if another evaluation wrote first
        (this one's transition, if any, is then not to be sent)."""
        params = (before.version + 1, after.firing, after.episode_id, after.started_at, after.clear_since, now,
                  value, baseline, unsent, site, rule_id)
        if before.version == 0:
            result = self.execute(
                "INSERT INTO {ks}.alert_state (version, firing, episode_id, started_at, clear_since, evaluated_at, "
                "last_value, last_baseline, unsent, site, rule_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "IF NOT EXISTS", params)
        else:
            result = self.execute(
                "UPDATE {ks}.alert_state SET version = ?, firing = ?, episode_id = ?, started_at = ?, "
                "clear_since = ?, evaluated_at = ?, last_value = ?, last_baseline = ?, unsent = ? "
                "WHERE site = ? AND rule_id = ? IF version = ?", (*params, before.version))
        return bool(result.one()[0])

    def mark_sent(self, site: str, rule_id: str, version: int) -> bool:
        """The transition written at ``version`` is published: forget its notification."""
        result = self.execute("UPDATE {ks}.alert_state SET version = ?, unsent = null WHERE site = ? AND rule_id = ? "
                              "IF version = ?", (version + 1, site, rule_id, version))
        return bool(result.one()[0])


def _utc(t: datetime | None) -> datetime | None:
    return as_utc(t) if t is not None else None


def _rule(row: Any) -> StoredRule:
    rule = Rule(row.site, row.rule_id, row.name, row.measure, row.window_s, row.condition, row.threshold,
                row.baseline, row.filters or "", row.min_volume or 0, row.resolve_after_s or 0, row.created_by or "")
    return StoredRule(rule, dict(row.recipients or {}), row.webhook_url or "", _utc(row.created_at),
                      row.webhook_secret or "")

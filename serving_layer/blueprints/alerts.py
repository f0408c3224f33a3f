"""Alert rules of a site: its members read them; analysts and admins add and remove them.
A rule's recipients are members of its site (or admins), each with how they are told:
live (the dashboard's bell), email, or the rule's webhook."""
from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, Field

from serving_layer.access import Access, require_principal, unknown_site
from serving_layer.api import API_PREFIX, Body, endpoint, no_content
from serving_layer.errors import ApiError
from serving_layer.params import store
from store.alerts import StoredRule, new_rule_id
from views.alerts import BASELINES, CONDITIONS, MAX_WINDOW_S, MIN_WINDOW_S, Rule, RuleError

bp = Blueprint("alerts", __name__, url_prefix=API_PREFIX)


class NewRule(Body):
    name: str = Field(min_length=1, max_length=100)
    measure: str = Field(max_length=80, description="pageviews, events, visitors, clicks, impressions, "
                                                     "goal:<goal name> or event:<custom event name>")
    window_s: int = Field(ge=MIN_WINDOW_S, le=MAX_WINDOW_S, description="the trailing window, in seconds")
    condition: Literal[CONDITIONS]  # type: ignore[valid-type]
    threshold: float = Field(ge=0, description="above/below: the value; spike/drop: the factor (> 1)")
    baseline: Literal[BASELINES] = "week_ago"  # type: ignore[valid-type]
    filters: str = Field("", max_length=2000, description="as a report's filters, e.g. page==/pricing")
    min_volume: int = Field(0, ge=0, description="the window, or its baseline, must count this many to alert")
    resolve_after_s: int = Field(600, ge=0, le=MAX_WINDOW_S,
                                 description="the episode ends once the condition has not held this long")
    recipients: dict[str, Literal["live", "email", "webhook", "digest"]] | None = Field(
        None, max_length=100, description="member email -> how they are told besides their notification centre "
                                          "and dashboard: live (only), email, webhook (the rule's) or digest "
                                          "(a daily email); default: the caller, live")
    webhook_url: str = Field("", max_length=2000, description="http(s) URL the 'webhook' recipients are posted to")


class RuleState(BaseModel):
    firing: bool
    episode_id: str
    started_at: str | None
    evaluated_at: str | None
    last_value: float | None
    last_baseline: float | None


class RuleInfo(BaseModel):
    id: str
    site: str
    name: str
    measure: str
    window_s: int
    condition: str
    threshold: float
    baseline: str
    filters: str
    min_volume: int
    resolve_after_s: int
    recipients: dict[str, str]
    webhook_url: str
    created_by: str
    created_at: str | None
    state: RuleState | None = None


class RuleCreated(RuleInfo):
    webhook_secret: str = Field(description="signs the webhook's bodies: X-Parallax-Signature is "
                                            "sha256=<hex HMAC-SHA256 of the body>; shown once, here ('' "
                                            "without a webhook)")


class RuleList(BaseModel):
    rules: list[RuleInfo]


class Delivery(BaseModel):
    at: str
    notification_id: str
    channel: str
    target: str
    attempt: int
    ok: bool
    detail: str | None


class DeliveryList(BaseModel):
    deliveries: list[Delivery]


def _check_site(site: str) -> None:
    if store().site_zone(site) is None:
        raise unknown_site(site)


def _info(stored: StoredRule, *, with_state: bool = False) -> dict[str, Any]:
    r = stored.rule
    info = RuleInfo(id=r.rule_id, site=r.site, name=r.name, measure=r.measure, window_s=r.window_s,
                    condition=r.condition, threshold=r.threshold, baseline=r.baseline, filters=r.filters,
                    min_volume=r.min_volume, resolve_after_s=r.resolve_after_s, recipients=stored.recipients,
                    webhook_url=stored.webhook_url, created_by=r.created_by,
                    created_at=stored.created_at.isoformat() if stored.created_at else None)
    if with_state:
        s = store().alerts.state(r.site, r.rule_id)
        info.state = RuleState(firing=s.episode.firing, episode_id=s.episode.episode_id,
                               started_at=s.episode.started_at.isoformat() if s.episode.started_at else None,
                               evaluated_at=s.evaluated_at.isoformat() if s.evaluated_at else None,
                               last_value=s.last_value, last_baseline=s.last_baseline)
    return info.model_dump()


def _rule(site: str, rule_id: str) -> StoredRule:
    _check_site(site)
    stored = store().alerts.rule(site, rule_id)
    if stored is None:
        raise ApiError(404, f"site {site!r} has no alert rule {rule_id!r}")
    return stored


def _webhook(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, "webhook_url must be an http:// or https:// URL", parameter="webhook_url")
    return url


@endpoint(bp, "GET", "/sites/<site>/alerts", Access.SITE_VIEWER, ok=RuleList, tags=["alerts"])
def list_rules(site: str) -> Response:
    """The site's alert rules, each with its episode's state."""
    _check_site(site)
    return jsonify(rules=[_info(r, with_state=True) for r in store().alerts.rules(site)])


@endpoint(bp, "POST", "/sites/<site>/alerts", Access.SITE_ANALYST, body=NewRule, ok=RuleCreated, ok_status=201,
          tags=["alerts"])
def add_rule(site: str) -> tuple[Response, int]:
    """Add an alert rule. It is evaluated as the site's live updates arrive."""
    body: NewRule = request.context.json  # type: ignore[attr-defined]
    _check_site(site)
    who = require_principal()
    recipients = dict(body.recipients) if body.recipients is not None else {who.user.email: "live"}
    accounts = store().accounts
    for email in recipients:
        user = accounts.user(email)
        if user is None or not (user.is_admin or accounts.role(email, site)):
            raise ApiError(400, f"recipient {email!r} is not a member of site {site!r}", parameter="recipients")
    rule = Rule(site, new_rule_id(), body.name, body.measure, body.window_s, body.condition, body.threshold,
                body.baseline, body.filters, body.min_volume, body.resolve_after_s, who.user.email)
    try:
        stored = store().alerts.add(StoredRule(rule, recipients, _webhook(body.webhook_url)))
    except (RuleError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None
    return jsonify({**_info(stored), "webhook_secret": stored.webhook_secret}), 201


@endpoint(bp, "GET", "/sites/<site>/alerts/<rule_id>", Access.SITE_VIEWER, ok=RuleInfo, tags=["alerts"])
def rule_detail(site: str, rule_id: str) -> Response:
    return jsonify(_info(_rule(site, rule_id), with_state=True))


@endpoint(bp, "GET", "/sites/<site>/alerts/<rule_id>/deliveries", Access.SITE_ANALYST, ok=DeliveryList,
          tags=["alerts"])
def rule_deliveries(site: str, rule_id: str) -> Response:
    """The rule's email and webhook deliveries, newest first: each attempt and its outcome."""
    _rule(site, rule_id)
    return jsonify(deliveries=store().notifications.deliveries(site, rule_id))


@endpoint(bp, "DELETE", "/sites/<site>/alerts/<rule_id>", Access.SITE_ANALYST, ok=None, ok_status=204,
          tags=["alerts"])
def remove_rule(site: str, rule_id: str) -> Response:
    _check_site(site)
    if not store().alerts.remove(site, rule_id):
        raise ApiError(404, f"site {site!r} has no alert rule {rule_id!r}")
    return no_content()

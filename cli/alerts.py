"""`parallax alert add | list | remove`: a site's alert rules, as the API keeps them."""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import click

from cli.common import fail
from infra.clients import cassandra_keyspace
from infra.settings import Settings
from store.accounts import Accounts
from store.alerts import AlertRules, StoredRule, new_rule_id
from store.registry import Registry
from views.alerts import BASELINES, CHANNELS, Rule, RuleError

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> int:
    """ "15m", "1h", "90s" or "900" as seconds."""
    m = _DURATION.match(text.strip().lower())
    if m is None:
        raise click.BadParameter(f"{text!r}: a duration such as 300, 90s, 15m, 1h or 1d")
    return int(m.group(1)) * _UNITS[m.group(2)]


@contextmanager
def _stores(settings: Settings) -> Iterator[tuple[AlertRules, Registry, Accounts]]:
    with cassandra_keyspace(settings) as session:
        ks = settings.cassandra.keyspace
        yield AlertRules(session, ks), Registry(session, ks), Accounts(session, ks)


@click.group()
def alert() -> None:
    """Alert rules: a measure over a window, a condition, who is told (`parallax alerting` evaluates them)."""


@alert.command("add")
@click.argument("site_id")
@click.argument("name")
@click.option("--measure", default="pageviews", show_default=True,
              help="pageviews, events, visitors, clicks, impressions, goal:<goal> or event:<custom event>")
@click.option("--window", default="15m", show_default=True, help="the trailing window: 5m to 1d")
@click.option("--above", type=float, help="fire when the window's value is above this")
@click.option("--below", type=float, help="fire when it is below this")
@click.option("--spike", type=float, help="fire when it is this many times its baseline")
@click.option("--drop", type=float, help="fire when it is its baseline divided by this")
@click.option("--baseline", type=click.Choice(BASELINES), default="week_ago", show_default=True,
              help="spike/drop: the same window a week ago, or its average over the previous 7 days")
@click.option("--filters", default="", help="as a report's filters, e.g. 'page==/pricing;country==FR'")
@click.option("--min-volume", type=int, default=0, show_default=True,
              help="the window, or its baseline, must count this many to alert")
@click.option("--resolve-after", default="10m", show_default=True,
              help="the episode ends once the condition has not held this long")
@click.option("--notify", "recipients", multiple=True, required=True,
              help="EMAIL or EMAIL:CHANNEL (live, email, webhook), a member of the site; repeatable")
@click.option("--webhook", default="", help="the URL 'webhook' recipients' notifications are posted to")
@click.pass_obj
def alert_add(settings: Settings, site_id: str, name: str, measure: str, window: str, above: float | None,
              below: float | None, spike: float | None, drop: float | None, baseline: str, filters: str,
              min_volume: int, resolve_after: str, recipients: tuple[str, ...], webhook: str) -> None:
    conditions = {k: v for k, v in (("above", above), ("below", below), ("spike", spike), ("drop", drop))
                  if v is not None}
    if len(conditions) != 1:
        fail("give exactly one condition: --above, --below, --spike or --drop")
    ((condition, threshold),) = conditions.items()
    who: dict[str, str] = {}
    for r in recipients:
        email, _, channel = r.partition(":")
        if (channel or "live") not in CHANNELS:
            fail(f"--notify {r}: the channel is one of {', '.join(CHANNELS)}")
        who[email] = channel or "live"
    with _stores(settings) as (rules, registry, accounts):
        if registry.site_zone(site_id) is None:
            fail(f"unknown site {site_id!r}")
        for email in who:
            user = accounts.user(email)
            if user is None or not (user.is_admin or accounts.role(email, site_id)):
                fail(f"{email} is not a member of {site_id} (`parallax member add`)")
        rule = Rule(site_id, new_rule_id(), name, measure, seconds(window), condition, threshold, baseline, filters,
                    min_volume, seconds(resolve_after), "cli")
        try:
            stored = rules.add(StoredRule(rule, who, webhook))
        except (RuleError, ValueError) as exc:
            fail(exc)
    click.echo(f"alert rule {stored.rule.rule_id} added to {site_id}: {name}")
    if stored.webhook_secret:
        click.echo(f"webhook secret (shown once; bodies are signed with HMAC-SHA256 of it): {stored.webhook_secret}")


@alert.command("list")
@click.argument("site_id")
@click.pass_obj
def alert_list(settings: Settings, site_id: str) -> None:
    with _stores(settings) as (rules, _, _):
        for stored in rules.rules(site_id):
            r, state = stored.rule, rules.state(site_id, stored.rule.rule_id)
            status = "FIRING" if state.episode.firing else "ok"
            click.echo(f"{r.rule_id}  {status:6s}  {r.name}: {r.measure} over {r.window_s}s {r.condition} "
                       f"{r.threshold:g}{' ' + r.filters if r.filters else ''} -> "
                       f"{', '.join(f'{e}:{c}' for e, c in sorted(stored.recipients.items()))}")


@alert.command("remove")
@click.argument("site_id")
@click.argument("rule_id")
@click.pass_obj
def alert_remove(settings: Settings, site_id: str, rule_id: str) -> None:
    with _stores(settings) as (rules, _, _):
        if not rules.remove(site_id, rule_id):
            fail(f"{site_id} has no alert rule {rule_id}")
    click.echo(f"alert rule {rule_id} removed from {site_id}")

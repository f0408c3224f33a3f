"""A rule's value over a window, through the reports facade: the same numbers as the
report its notification links to. Counts without filters come from the views (speed
views for the live window, batch views for a baseline a week ago); a goal's conversions,
an event name's count and filtered rules from the master dataset (reports' on-demand path,
as far as the archive has committed)."""
from __future__ import annotations

from datetime import datetime, timedelta
from statistics import mean
from urllib.parse import urlencode

from serving_layer.reports.facade import Sources, answered_on_demand, traffic_report
from views.alerts import Rule, baseline_windows, measure_parts
from views.filters import Filter, parse_filters

MINUTE = timedelta(minutes=1)


def _question(rule: Rule) -> tuple[str, list[Filter]]:
    kind, name = measure_parts(rule.measure)
    filters = list(parse_filters(rule.filters))
    if kind == "goal":
        return "events", [*filters, Filter("goal", "==", name)]
    if kind == "event":
        return "events", [*filters, Filter("event_name", "==", name)]
    return name, filters


def from_archive(rule: Rule) -> bool:
    """Whether the rule's value is computed from the master dataset (not the views)."""
    return answered_on_demand(_question(rule)[1])


def aligned_window(rule: Rule, now: datetime) -> tuple[datetime, datetime]:
    """The window in whole minutes, ending with the minute ``now`` is in (views hold minutes)."""
    end = now.replace(second=0, microsecond=0) + MINUTE
    return end - timedelta(seconds=rule.window_s - rule.window_s % 60 or 60), end


def value(store: Sources, rule: Rule, start: datetime, end: datetime) -> float:
    metric, filters = _question(rule)
    answer = traffic_report(store, rule.site, [metric], start, end, "minute", filters=filters)
    return float(answer["totals"].get(metric) or 0)


def evaluate(store: Sources, rule: Rule, now: datetime) -> tuple[float, float | None]:
    """The window's value at ``now``, and its baseline where the rule needs one."""
    start, end = aligned_window(rule, now)
    current = value(store, rule, start, end)
    if not rule.needs_baseline:
        return current, None
    shifts = [end - e for _, e in baseline_windows(rule, now)]
    return current, mean(value(store, rule, start - shift, end - shift) for shift in shifts)


def report_link(rule: Rule, now: datetime) -> str:
    """The serving layer's report of the window (a path: the API's, until the dashboard's)."""
    start, end = aligned_window(rule, now)
    metric, filters = _question(rule)
    params = {"from": start.isoformat(), "to": end.isoformat(), "granularity": "minute", "metrics": metric}
    if filters:
        params["filters"] = ";".join(map(str, filters))
    return f"/api/v1/sites/{rule.site}/report?{urlencode(params)}"

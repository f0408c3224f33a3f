"""Alert rules, defined once: what a rule measures, when its condition holds, and how its
episodes start and end. Pure Python: the API validates rules with it, the evaluator decides
with it, and the tests check it on tiny inputs.

A rule watches one measure of one site over a trailing window (5 minutes to a day),
optionally filtered like a report. Its condition is a threshold (``above``/``below``) or a
change against a baseline (``spike``/``drop`` by a factor: the same window a week earlier,
or the average of the same window over the previous days). A minimum volume keeps a quiet
site from alerting on noise: the window, or its baseline, must hold that many.

An episode starts when the condition starts to hold (one "fired" notification) and ends
when it has not held for ``resolve_after_s`` (one "resolved"); nothing repeats between.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from views.catalogue import EVENT_COUNTS
from views.filters import FilterError, parse_filters
from views.goals import GOAL_NAME

CONDITIONS = ("above", "below", "spike", "drop")
BASELINES = ("week_ago", "trailing")
# How a recipient is told, besides their notification centre and live push: not otherwise,
# by email at once, by the rule's webhook, or in a daily email digest.
CHANNELS = ("live", "email", "webhook", "digest")
MIN_WINDOW_S, MAX_WINDOW_S = 300, 86_400
TRAILING_DAYS = 7  # a "trailing" baseline: the same window on each of the days before, averaged
# Measures a rule can watch: counts of the catalogue (summable over any window) and the
# visitors; a goal's conversions ("goal:<name>") and an event name's count ("event:<name>").
RULE_MEASURES = (*EVENT_COUNTS, "visitors")
EVENT_NAME = re.compile(r"^[^\x00-\x1f]{1,64}$")


class RuleError(ValueError):
    """A rule that cannot be kept; the message names the field and why."""


@dataclass(frozen=True)
class Rule:
    site: str
    rule_id: str
    name: str
    measure: str  # one of RULE_MEASURES, "goal:<name>" or "event:<name>"
    window_s: int
    condition: str  # one of CONDITIONS
    threshold: float  # above/below: the value; spike/drop: the factor (> 1)
    baseline: str = "week_ago"  # spike/drop (and "below"'s volume check): one of BASELINES
    filters: str = ""  # as a report's ``filters`` parameter
    min_volume: int = 0
    resolve_after_s: int = 600
    created_by: str = ""

    @property
    def needs_baseline(self) -> bool:
        return self.condition in ("spike", "drop") or (self.condition == "below" and self.min_volume > 0)


def measure_parts(measure: str) -> tuple[str, str]:
    """("count", name) for a catalogue measure, ("goal", name) or ("event", name)."""
    kind, _, name = measure.partition(":")
    if name and kind in ("goal", "event"):
        return kind, name
    return "count", measure


def validate_rule(rule: Rule) -> Rule:
    """The rule, or a RuleError naming what is wrong."""
    kind, name = measure_parts(rule.measure)
    if kind == "count" and name not in RULE_MEASURES:
        raise RuleError(f"measure {rule.measure!r}: use one of {', '.join(RULE_MEASURES)}, goal:<goal name> or "
                        "event:<custom event name>")
    if kind == "goal" and not GOAL_NAME.fullmatch(name):
        raise RuleError(f"measure {rule.measure!r}: not a goal's name")
    if kind == "event" and not EVENT_NAME.fullmatch(name):
        raise RuleError(f"measure {rule.measure!r}: an event name has 1-64 printable characters")
    if not MIN_WINDOW_S <= rule.window_s <= MAX_WINDOW_S:
        raise RuleError(f"window_s {rule.window_s}: from {MIN_WINDOW_S} (5 minutes) to {MAX_WINDOW_S} (a day)")
    if rule.condition not in CONDITIONS:
        raise RuleError(f"condition {rule.condition!r}: use one of {', '.join(CONDITIONS)}")
    if rule.baseline not in BASELINES:
        raise RuleError(f"baseline {rule.baseline!r}: use one of {', '.join(BASELINES)}")
    if rule.condition in ("spike", "drop") and not rule.threshold > 1:
        raise RuleError(f"threshold {rule.threshold}: a {rule.condition}'s factor is above 1 (2 = twice, or half)")
    if rule.condition in ("above", "below") and rule.threshold < 0:
        raise RuleError(f"threshold {rule.threshold}: a count is never negative")
    if rule.min_volume < 0:
        raise RuleError("min_volume: 0 or more")
    if not 0 <= rule.resolve_after_s <= MAX_WINDOW_S:
        raise RuleError(f"resolve_after_s {rule.resolve_after_s}: from 0 to {MAX_WINDOW_S}")
    try:
        filters = parse_filters(rule.filters)
    except FilterError as exc:
        raise RuleError(f"filters: {exc}") from None
    return replace(rule, filters=";".join(map(str, filters)))


def window(rule: Rule, now: datetime) -> tuple[datetime, datetime]:
    """The rule's trailing window at ``now``: [now - window, now)."""
    return now - timedelta(seconds=rule.window_s), now


def baseline_windows(rule: Rule, now: datetime) -> list[tuple[datetime, datetime]]:
    """The windows whose values make the baseline: a week before, or each of the days before."""
    start, end = window(rule, now)
    if rule.baseline == "week_ago":
        return [(start - timedelta(days=7), end - timedelta(days=7))]
    return [(start - timedelta(days=d), end - timedelta(days=d)) for d in range(1, TRAILING_DAYS + 1)]


@dataclass(frozen=True)
class Verdict:
    holds: bool
    value: float
    baseline: float | None
    why: str  # for the notification and the log: what was compared with what


def judge(rule: Rule, value: float, baseline: float | None) -> Verdict:
    """Whether the rule's condition holds for the window's ``value`` (and the ``baseline``,
    the average of its baseline windows, where the rule needs one)."""
    volume = max(value, baseline or 0)
    quiet = volume < rule.min_volume
    if rule.condition == "above":
        holds = value > rule.threshold and not quiet
        why = f"{value:g} > {rule.threshold:g}"
    elif rule.condition == "below":
        holds = value < rule.threshold and not quiet
        why = f"{value:g} < {rule.threshold:g}"
    elif baseline is None:
        return Verdict(False, value, None, "no baseline")
    elif rule.condition == "spike":
        holds = value >= rule.threshold * baseline and value >= rule.min_volume and value > 0
        why = f"{value:g} >= {rule.threshold:g} x {baseline:g}"
    else:  # drop
        holds = value * rule.threshold <= baseline and baseline >= max(rule.min_volume, 1)
        why = f"{value:g} <= {baseline:g} / {rule.threshold:g}"
    if quiet and rule.min_volume:
        why += f" (below the minimum volume {rule.min_volume})"
    return Verdict(holds, value, baseline, why if holds else f"not {why}")


@dataclass(frozen=True)
class Episode:
    """A rule's state: ``firing`` since ``started_at``, and since when it stopped holding."""
    firing: bool = False
    episode_id: str = ""
    started_at: datetime | None = None
    clear_since: datetime | None = None


def step(rule: Rule, state: Episode, holds: bool, now: datetime, new_id: str) -> tuple[Episode, str | None]:
    """The state after one evaluation, and the transition ("fired", "resolved" or None).
    ``new_id`` names the episode if this evaluation starts one."""
    if not state.firing:
        if holds:
            return Episode(True, new_id, now, None), "fired"
        return state, None
    if holds:
        return replace(state, clear_since=None), None
    clear_since = state.clear_since or now
    if (now - clear_since).total_seconds() >= rule.resolve_after_s:
        return Episode(False, state.episode_id, state.started_at, now), "resolved"
    return replace(state, clear_since=clear_since), None

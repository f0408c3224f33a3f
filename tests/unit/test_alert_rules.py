"""Alert rules on tiny inputs: validation names what is wrong, each condition holds exactly
when it should (and not on a quiet site), and an episode fires once and resolves once."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from views.alerts import Episode, Rule, RuleError, baseline_windows, judge, step, validate_rule

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
RULE = Rule("shop", "r1", "traffic spike", "pageviews", 900, "above", 100.0)


@pytest.mark.parametrize(("change", "named"), [
    ({"measure": "sessions"}, "measure"), ({"measure": "goal:"}, "measure"), ({"measure": "goal:\x00x"}, "measure"),
    ({"window_s": 60}, "window_s"), ({"window_s": 86_401}, "window_s"), ({"condition": "equals"}, "condition"),
    ({"condition": "spike", "threshold": 1.0}, "threshold"), ({"threshold": -1.0}, "threshold"),
    ({"baseline": "yesterday"}, "baseline"), ({"min_volume": -5}, "min_volume"),
    ({"filters": "colour==red"}, "filters"), ({"resolve_after_s": -1}, "resolve_after_s"),
])
def test_a_bad_rule_is_refused_naming_the_field(change, named):
    with pytest.raises(RuleError, match=named):
        validate_rule(replace(RULE, **change))


def test_a_good_rule_is_kept_with_its_filters_normalised():
    rule = validate_rule(replace(RULE, measure="goal:Signup", filters=" country ==FR;;page=@/pricing"))
    assert rule.filters == "country==FR;page=@/pricing"
    assert validate_rule(replace(RULE, measure="event:signup")).measure == "event:signup"


def test_thresholds_and_the_minimum_volume():
    assert judge(RULE, 101, None).holds and not judge(RULE, 100, None).holds
    below = replace(RULE, condition="below", threshold=10, min_volume=50)
    assert not judge(below, 3, 20).holds  # a quiet site: neither the window nor its baseline reach 50
    assert judge(below, 3, 80).holds and "3 < 10" in judge(below, 3, 80).why
    assert not judge(below, 12, 80).holds


def test_spikes_and_drops_against_the_baseline():
    spike = replace(RULE, condition="spike", threshold=3, min_volume=20)
    assert judge(spike, 30, 10).holds and not judge(spike, 29, 10).holds
    assert not judge(spike, 15, 5).holds  # three times, but under the minimum volume
    assert not judge(spike, 30, None).holds  # no baseline, no verdict
    drop = replace(RULE, condition="drop", threshold=2, min_volume=20)
    assert judge(drop, 10, 20).holds and not judge(drop, 11, 20).holds
    assert not judge(drop, 0, 10).holds  # the baseline itself is under the minimum volume
    assert judge(replace(drop, min_volume=0), 0, 1).holds and not judge(replace(drop, min_volume=0), 0, 0).holds


def test_baseline_windows():
    (week,) = baseline_windows(replace(RULE, baseline="week_ago"), T0)
    assert week == (T0 - timedelta(days=7, seconds=900), T0 - timedelta(days=7))
    trailing = baseline_windows(replace(RULE, baseline="trailing"), T0)
    assert len(trailing) == 7 and trailing[0] == (T0 - timedelta(days=1, seconds=900), T0 - timedelta(days=1))


def test_an_episode_fires_once_and_resolves_once_after_the_quiet_time():
    rule = replace(RULE, resolve_after_s=300)
    holds = [False, True, True, False, True, False, False, False, False, True]  # a minute apart
    state, transitions = Episode(), []
    for i, h in enumerate(holds):
        state, t = step(rule, state, h, T0 + timedelta(minutes=i), f"e{i}")
        transitions.append(t)
    # fired at 1; the lapse at 3 lasted a minute only; clear from 5, resolved at 5 + 5 min (= 10, not reached).
    assert transitions == [None, "fired", None, None, None, None, None, None, None, None]
    assert state.firing and state.episode_id == "e1" and state.clear_since is None
    state, t = step(rule, state, False, T0 + timedelta(minutes=10), "x")
    state, t2 = step(rule, state, False, T0 + timedelta(minutes=15), "x")
    assert (t, t2) == (None, "resolved") and not state.firing and state.episode_id == "e1"
    state, t3 = step(rule, state, True, T0 + timedelta(minutes=16), "e16")
    assert t3 == "fired" and state.episode_id == "e16"

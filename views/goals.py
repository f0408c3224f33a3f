"""Goals: what counts as a conversion on a site, configured with `parallax goal add`.

A goal is either a page-path pattern (a pageview whose path matches) or a custom event
name (an event whose name matches). Both layers turn the site's goals into one Spark
expression (``views.transforms.goal_hits``), so a conversion means the same thing in
each; batch re-runs apply goals to history, the speed layer from when it reads them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

GOAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,63}$")
KINDS = ("page", "event")


@dataclass(frozen=True, order=True)
class Goal:
    site: str
    name: str
    kind: str  # "page" or "event"
    pattern: str  # a path pattern ("/signup/*/done", "/blog/**") or an event name

    def regex(self) -> str:
        """The pattern as an anchored Java/Python regular expression."""
        return path_regex(self.pattern) if self.kind == "page" else "^" + re.escape(self.pattern) + "$"


def path_regex(pattern: str) -> str:
    """A path glob as an anchored regex: ``*`` matches within one path segment, ``**``
    across segments (as Plausible's page goals do); everything else literally."""
    out = []
    for part in re.split(r"(\*\*|\*)", pattern):
        out.append(".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part))
    return "^" + "".join(out) + "$"


def validate_goal(goal: Goal) -> None:
    if goal.kind not in KINDS:
        raise ValueError(f"goal kind {goal.kind!r}: use one of {', '.join(KINDS)}")
    if not GOAL_NAME.fullmatch(goal.name):
        raise ValueError(f"goal name {goal.name!r}: 1-64 letters, digits, spaces or _ . : / -, starting with a "
                         "letter or digit")
    if goal.kind == "page" and not goal.pattern.startswith("/"):
        raise ValueError(f"page goal pattern {goal.pattern!r} must be a path starting with '/'")
    if not goal.pattern or len(goal.pattern) > 256:
        raise ValueError("a goal's pattern must have 1 to 256 characters")

"""`parallax generate`: register the sites, plan the traffic, send it, write the truth."""
from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from infra.clients import cassandra_session
from infra.settings import Settings
from store.registry import Registry
from tools.generator.catalog import Mix
from tools.generator.model import Delivery, Model, SiteSpec, site_specs, skip_before, span_of, take_events
from tools.generator.sender import Sender, Stats, now_ms, send_all
from tools.generator.truth import TruthWriter, summarize, summary_path, totals
from views.goals import Goal

log = logging.getLogger(__name__)

# With --max and no --events, the simulated traffic runs at this many events per simulated
# second from `window` ago: more than one machine sends in any sensible run, and if the
# sending does catch up with the present, it goes on at this pace (never in the future).
MAX_MODE_SIM_RATE = 1000.0
WARM_UP_MS = 15 * 60_000


@dataclass(frozen=True)
class Config:
    collector: str
    sites: int = 3
    prefix: str = "gen-"
    rate: float = 20.0  # events per second; 0: as fast as possible
    events: int | None = None
    duration: float | None = None  # seconds
    window_s: float = 3600.0  # as fast as possible: the simulated time the events span, ending now
    seed: int = 1
    truth: Path | None = None
    workers: int = 4
    mix: Mix = field(default_factory=Mix)
    explicit_ids: bool = True
    register: bool = True

    @property
    def as_fast_as_possible(self) -> bool:
        return self.rate <= 0


def parse_duration(text: str) -> float:
    """Seconds of "90", "90s", "15m", "48h" or "2d"."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 15m, 48h, 2d)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def plan(config: Config, specs: list[SiteSpec], now: int) -> tuple[Model, Iterator[Delivery]]:
    """The model and its requests for this run.

    At a rate, the simulated clock is the wall clock: each request goes when it happens. As
    fast as possible, the traffic is placed in the past so that
    nothing is sent before it happened: ``--events N`` spread over the window and ending
    now (the model is run once to measure the span, then again from now minus that span:
    the same traffic, since only the ids depend on the start)."""
    common = dict(seed=config.seed, mix=config.mix, explicit_ids=config.explicit_ids)
    if not config.as_fast_as_possible:
        # Started WARM_UP_MS ago, with what happened before now left unsent, so that the
        # visits in progress make the rate steady from the first second (visits last minutes).
        model = Model(specs, start_ms=now - WARM_UP_MS, rate=config.rate, **common)
        stream = skip_before(model.deliveries(), now)
        return model, (take_events(stream, config.events) if config.events else stream)
    elif config.events:
        rate = config.events / config.window_s
        span = span_of(Model(specs, start_ms=0, rate=rate, **common), config.events)
        model = Model(specs, start_ms=now - span, rate=rate, **common)
    else:
        model = Model(specs, start_ms=now - int(config.window_s * 1000), rate=MAX_MODE_SIM_RATE, **common)
    stream = model.deliveries()
    return model, (take_events(stream, config.events) if config.events else stream)


def register_sites(settings: Settings, specs: list[SiteSpec]) -> tuple[dict[str, str], list[Goal]]:
    """Register the sites that are missing (as `parallax site add` does, each with its time
    zone) and their template's goals that they lack. Returns the Origin each site admits
    (its page host, when the site's domains allow it) and every goal of these sites."""
    ks = settings.cassandra.keyspace
    session = cassandra_session(settings, ks)
    registry = Registry(session, ks)
    origins: dict[str, str] = {}
    try:
        existing_goals = registry.goals()
        for spec in specs:
            known = registry.site_domains(spec.site)
            domain = spec.host.removeprefix("www.")
            if known is None:
                registry.add_site(spec.site, [domain], spec.timezone)
                log.info("registered site %s (%s, %s)", spec.site, domain, spec.timezone)
                domains: set[str] = {domain}
            else:
                domains = set(known)
            if any(spec.host == d or spec.host.endswith("." + d) for d in domains):
                origins[spec.site] = f"https://{spec.host}"
            have = {g.name for g in existing_goals if g.site == spec.site}
            for name, kind, pattern in spec.template.goals:
                if name not in have:
                    registry.add_goal(Goal(spec.site, name, kind, pattern))
                    log.info("goal %r of %s: %s %s", name, spec.site, kind, pattern)
        sites = {s.site for s in specs}
        goals = [g for g in registry.goals() if g.site in sites]
    finally:
        session.cluster.shutdown()
    return origins, goals


def template_goals(specs: list[SiteSpec]) -> list[Goal]:
    return [Goal(s.site, name, kind, pattern) for s in specs for name, kind, pattern in s.template.goals]


def default_truth_path(settings: Settings, seed: int) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return settings.paths.var_dir / "generate" / f"truth-{stamp}-seed{seed}.jsonl"


def generate(settings: Settings, config: Config, stop: threading.Event) -> dict[str, Any]:
    """Send the traffic until done, the duration is over or ``stop`` is set; write the
    truth and its summary; return the summary."""
    specs = site_specs(config.sites, config.prefix)
    if config.register:
        origins, goals = register_sites(settings, specs)
    else:
        origins, goals = {}, template_goals(specs)
    truth_path = config.truth or default_truth_path(settings, config.seed)
    writer = TruthWriter(truth_path)
    stats = Stats()
    sender = Sender(config.collector, stats, stop, origins)
    started = now_ms()
    model, deliveries = plan(config, specs, started)
    log.info("sending %s for %s%s to %s, %s; truth: %s",
             f"{config.events} events" if config.events else "events",
             ", ".join(s.site for s in specs), f" for {config.duration:.0f}s" if config.duration else "",
             config.collector,
             "as fast as possible" if config.as_fast_as_possible else f"at {config.rate:g} events/s",
             truth_path)
    deadline = time.monotonic() + config.duration if config.duration else None
    try:
        send_all(deliveries, sender, writer, workers=config.workers, deadline=deadline)
    finally:
        writer.close()
    per_site = summarize(writer.rows, goals)
    summary = {
        "run": {"seed": config.seed, "sites": [s.site for s in specs], "collector": config.collector,
                "rate": config.rate or "max", "events_requested": config.events, "duration_s": config.duration,
                "window_s": config.window_s if config.as_fast_as_possible else None,
                "identity": "visitor_id" if config.explicit_ids else "derived (User-Agent token)",
                "mix": asdict(config.mix), "timeline_start_ms": model.start_ms, "started_ms": started,
                "ended_ms": now_ms(), "stopped": stop.is_set(), "truth": str(truth_path), **stats.as_dict()},
        "sites": per_site,
        "totals": totals(per_site),
        "goals": [asdict(g) for g in goals],
    }
    path = summary_path(truth_path)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The per-site table printed at the end of a run."""
    head = f"{'site':16s} {'events':>7s} {'pageviews':>9s} {'visitors':>8s} {'sessions':>8s} {'bounces':>7s} " \
           f"{'dups':>5s} {'late':>5s} {'bots':>5s}  conversions"
    lines = [head, "-" * len(head)]
    for site, s in summary["sites"].items():
        conv = ", ".join(f"{k}={v}" for k, v in s["conversions"].items())
        lines.append(f"{site:16s} {s['events']:7d} {s['pageviews']:9d} {s['visitors']:8d} {s['sessions']:8d} "
                     f"{s['bounces']:7d} {s['duplicates_sent']:5d} {s['late_events']:5d} {s['bot_events']:5d}  {conv}")
    run = summary["run"]
    lines.append(f"{run['requests']} requests, {run['retries']} retries, {run['refused_events']} events refused, "
                 f"{run['given_up_events']} given up; truth: {run['truth']}")
    return "\n".join(lines)


def cli_run(settings: Settings, config: Config) -> int:
    """The command: Ctrl-C (or SIGTERM) stops sending, waits for the requests in flight and
    still writes the truth and summary; a second Ctrl-C aborts."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("%s: finishing the requests in flight, then writing the truth (Ctrl-C again to abort)",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    summary = generate(settings, config, stop)
    print(format_summary(summary), flush=True)
    return 0 if summary["totals"]["events"] else 1


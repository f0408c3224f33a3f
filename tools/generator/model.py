"""The pure traffic model: visitors arriving on sites, their visits as page flows, and the
requests a tracker would make of them, in the order it would make them.

No clock is read and nothing is sent: given the sites, a seed, a start instant and a rate
(events per second of simulated time), ``Model.deliveries()`` yields the same requests
every time. ``tools.generator.sender`` sends them.

The rules the views depend on are kept by construction:
- inside a visit, no two consecutive events are more than ``MAX_PAUSE_MS`` apart (less than
  the 30-minute session gap), so a visit is one session;
- a visitor comes back only more than ``MIN_RETURN_MS`` after the end of their last visit,
  so each visit is a new session;
- a late visit (delivered long after it happened) belongs to a visitor who has no other
  visit, so shifting it back in time cannot merge it into another session.
"""
from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from tools.generator.catalog import BOTS, BROWSERS, SOURCES, TEMPLATES, ZONES, Agent, Mix, Page, Template

MINUTE_MS = 60_000
SESSION_GAP_MS = 30 * MINUTE_MS  # views.catalogue.DEFAULT_SESSION_GAP
MAX_PAUSE_MS = 25 * MINUTE_MS  # the longest pause inside a visit: well under the gap
MIN_RETURN_MS = 31 * MINUTE_MS  # the shortest absence between two visits: over the gap
LATE_MIN_MS, LATE_MAX_MS = 2 * MINUTE_MS, 4 * 60 * MINUTE_MS  # how late a late visit arrives
# The tracker's batching (collector/static/tracker.js): a second after the first queued
# event, or at once with 20 queued.
BATCH_DELAY_MS, BATCH_MAX = 1000, 20
MAX_PAGES = 20
RETURN_POOL = 50_000  # visitors remembered as possible returners


@dataclass(frozen=True)
class SiteSpec:
    site: str  # the site id
    host: str  # the pages' host, e.g. www.shop.example
    timezone: str
    template: Template


@dataclass
class Visitor:
    key: str  # stable id; sent as visitor_id, or made part of the User-Agent (see user_agent)
    site: SiteSpec
    agent: Agent
    visits: int = 0
    late_ms: int = 0  # a late visitor's one visit is delivered this long after it happened


@dataclass(frozen=True)
class Delivery:
    """One POST /api/collect, as the tracker would send it."""
    send_at: int  # epoch ms on the model's clock: not before this
    site: str
    visitor: str
    session: str  # the visit these events belong to: "<visitor>/<n>"
    agent: Agent
    user_agent: str
    events: tuple[dict[str, Any], ...]
    late_ms: int = 0  # how long after its events happened this is sent (0: as they happen)
    repeat: bool = False  # sent a second time, same event ids (a retry or page-hide beacon)


def site_specs(n: int, prefix: str = "gen-") -> list[SiteSpec]:
    """``n`` sites cycling through the templates and zones: <prefix>shop, <prefix>blog,
    <prefix>docs, <prefix>app, <prefix>shop2, ..."""
    specs = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)]
        site = f"{prefix}{template.name}{i // len(TEMPLATES) + 1 if i >= len(TEMPLATES) else ''}"
        specs.append(SiteSpec(site, f"www.{site}.example", ZONES[i % len(ZONES)], template))
    return specs


def _weighted(rng: random.Random, items: Iterable[tuple[Any, float]]) -> Any:
    pairs = [(item, w) for item, w in items if w > 0]
    return rng.choices([p for p, _ in pairs], [w for _, w in pairs])[0]


class Model:
    """Visitors arriving at ``rate`` events per simulated second from ``start_ms`` on.

    ``seed`` fixes the shape of the traffic; ids (event ids, visitor keys) come from the
    seed *and* the start, so two runs at different times never share an id (the layers
    would drop the second run's events as duplicates), while a run repeated with the same
    seed and start is identical.
    """

    def __init__(self, sites: list[SiteSpec], *, seed: int, start_ms: int, rate: float, mix: Mix = Mix(),  # noqa: B008 -- frozen
                 explicit_ids: bool = True) -> None:
        if not sites:
            raise ValueError("the model needs at least one site")
        if rate <= 0:
            raise ValueError("the model's rate (events per simulated second) must be positive")
        self.sites, self.start_ms, self.rate, self.mix = sites, start_ms, rate, mix
        self.explicit_ids = explicit_ids
        self.rng = random.Random(seed)
        self.ids = random.Random(f"{seed}:{start_ms}")
        self._site_weights = [1 / math.sqrt(i + 1) for i in range(len(sites))]  # some sites are busier
        self._pages = {s.site: s.template.by_path() for s in sites}
        # Visits per simulated millisecond, from the mean events of a visit (estimated
        # on a sample with an rng of its own, so that the traffic's draws stay the same).
        self.mean_events = self._mean_events(random.Random(seed + 1))
        self._visits_per_ms = rate / self.mean_events / 1000

    # --- the stream ------------------------------------------------------------------

    def deliveries(self) -> Iterator[Delivery]:
        """Every request, in the order of ``send_at`` (ties in creation order); endless.
        One stream per model: it draws from the model's random state."""
        pending: list[tuple[int, int, Delivery]] = []
        returns: list[tuple[int, int, Visitor]] = []  # (may return from, seq, visitor)
        eligible: list[Visitor] = []
        seq = 0
        arrival = self.start_ms + self._gap()
        while True:
            while not pending or arrival <= pending[0][0]:
                while returns and returns[0][0] <= arrival:
                    eligible.append(heapq.heappop(returns)[2])
                if len(eligible) > RETURN_POOL:  # the oldest never come back
                    del eligible[:len(eligible) - RETURN_POOL]
                visitor = self._returning(eligible) or self._new_visitor()
                deliveries, end = self._visit(self.rng, visitor, arrival)
                for d in deliveries:
                    heapq.heappush(pending, (d.send_at, seq, d))
                    seq += 1
                if not visitor.late_ms and visitor.agent.device != "bot":
                    heapq.heappush(returns, (end + MIN_RETURN_MS, seq, visitor))
                    seq += 1
                arrival += self._gap()
            yield heapq.heappop(pending)[2]

    def _gap(self) -> int:
        return max(1, round(self.rng.expovariate(self._visits_per_ms)))

    def _returning(self, eligible: list[Visitor]) -> Visitor | None:
        if not eligible or self.rng.random() >= self.mix.returning:
            return None
        return eligible.pop(self.rng.randrange(len(eligible)))

    def _new_visitor(self, rng: random.Random | None = None, ids: random.Random | None = None) -> Visitor:
        rng, ids = rng or self.rng, ids or self.ids
        site = rng.choices(self.sites, self._site_weights)[0]
        bot = rng.random() < self.mix.bots
        agent = _weighted(rng, ((a, a.weight) for a in (BOTS if bot else BROWSERS)))
        late = 0
        if not bot and rng.random() < self.mix.late:
            late = round(math.exp(rng.uniform(math.log(LATE_MIN_MS), math.log(LATE_MAX_MS))))
        return Visitor(f"v{ids.getrandbits(96):024x}", site, agent, late_ms=late)

    def user_agent(self, visitor: Visitor) -> str:
        """The header: the browser's own, or, when the collector derives visitor ids (no
        ``visitor_id`` sent), with a token of the visitor's: every request comes from one
        address, and the id hashes address and User-Agent."""
        if self.explicit_ids:
            return visitor.agent.user_agent
        return f"{visitor.agent.user_agent} pxv/{visitor.key[1:]}"

    # --- one visit ---------------------------------------------------------------------

    def _visit(self, rng: random.Random, visitor: Visitor, start: int,
               ids: random.Random | None = None) -> tuple[list[Delivery], int]:
        """The requests of one visit starting at ``start``, and the time of its last event."""
        ids = ids or self.ids
        visitor.visits += 1
        session = f"{visitor.key}/{visitor.visits}"
        pages = self._pages[visitor.site.site]
        flow = self._bot_flow if visitor.agent.device == "bot" else self._human_flow
        events = flow(rng, ids, visitor, pages, start)
        if self.explicit_ids:
            for e in events:
                e["visitor_id"] = visitor.key
        end = events[-1]["ts"]
        deliveries = []
        for batch, send_at in _batches(events):
            if visitor.late_ms:
                for e in batch:
                    e["ts"] -= visitor.late_ms
            deliveries.append(Delivery(send_at + rng.randint(20, 300), visitor.site.site, visitor.key, session,
                                       visitor.agent, self.user_agent(visitor), tuple(batch), visitor.late_ms,
                                       rng.random() < self.mix.duplicates))
        return deliveries, end

    def _landing(self, rng: random.Random, visitor: Visitor, pages: dict[str, Page]) -> tuple[str, str, str | None]:
        """Landing page path, URL (with UTM parameters for a campaign) and referrer."""
        path = _weighted(rng, ((p.path, p.entry) for p in pages.values()))
        url = f"https://{visitor.site.host}{path}"
        # A returning visitor more often comes back directly (a bookmark, a typed address).
        source = SOURCES[0] if visitor.visits > 1 and rng.random() < 0.5 else \
            _weighted(rng, ((s, s.weight) for s in SOURCES))
        referrer = rng.choice(source.referrers) if source.referrers else None
        if source.utm:
            url += "?" + urlencode(rng.choice(source.utm))
        return path, url, referrer or None

    def _human_flow(self, rng: random.Random, ids: random.Random, visitor: Visitor, pages: dict[str, Page],
                    start: int) -> list[dict[str, Any]]:
        path, url, referrer = self._landing(rng, visitor, pages)
        events: list[dict[str, Any]] = []
        t = start
        for _ in range(MAX_PAGES):
            page = pages[path]
            dwell = _dwell(rng)
            events.append(_event(ids, "pageview", t, url, referrer))
            clicked = None
            for element in page.elements:
                if rng.random() >= element.visible:
                    continue
                seen = t + rng.randint(100, min(2000, dwell // 3))
                events.append(_event(ids, "impression", seen, url, referrer, props={"element": element.name}))
                if clicked is None and rng.random() < element.ctr:
                    clicked = element
                    events.append(_event(ids, "click", seen + rng.randint(500, dwell - (seen - t) - 200), url,
                                         referrer, props={"element": element.name}))
            for custom in page.customs:
                if rng.random() < custom.probability:
                    props = {k: rng.choice(v) for k, v in custom.props}
                    events.append(_event(ids, "custom", t + rng.randint(dwell // 5, dwell * 4 // 5), url, referrer,
                                         name=custom.name, props=props or None))
            if clicked is not None and clicked.target in pages and rng.random() < 0.9:
                nxt = clicked.target
            elif rng.random() < page.exit:
                if page.outbound and rng.random() < visitor.site.template.outbound_exits:
                    # The last thing on the page: the tracker beacons it as the browser leaves.
                    at = max(e["ts"] for e in events) + rng.randint(300, 3000)
                    events.append(_event(ids, "click", at, url, referrer, name="outbound",
                                         props={"url": rng.choice(page.outbound)}))
                break
            else:
                nxt = _weighted(rng, page.links)
            events.sort(key=lambda e: e["ts"])
            referrer, url, path, t = url, f"https://{visitor.site.host}{nxt}", nxt, t + dwell
        events.sort(key=lambda e: e["ts"])
        return events

    def _bot_flow(self, rng: random.Random, ids: random.Random, visitor: Visitor, pages: dict[str, Page],
                  start: int) -> list[dict[str, Any]]:
        """A crawler: pageviews only, a few seconds apart, no referrer."""
        paths = list(pages)
        rng.shuffle(paths)
        t, events = start, []
        for path in paths[:rng.randint(1, len(paths))]:
            events.append(_event(ids, "pageview", t, f"https://{visitor.site.host}{path}", None))
            t += rng.randint(500, 8000)
        return events

    def _mean_events(self, rng: random.Random) -> float:
        ids = random.Random(0)
        sample = [self._visit(rng, self._new_visitor(rng, ids), 0, ids)[0] for _ in range(2000)]
        return sum(len(d.events) for visit in sample for d in visit) / len(sample)


def _dwell(rng: random.Random) -> int:
    """Time on a page before the next one: log-normal around 40 s, sometimes a long pause
    (a tab left open), never as long as the session gap."""
    if rng.random() < 0.04:
        return rng.randint(5 * MINUTE_MS, MAX_PAUSE_MS)
    return int(min(MAX_PAUSE_MS, max(3000, rng.lognormvariate(math.log(40_000), 0.9))))


def _event(ids: random.Random, type_: str, ts: int, url: str, referrer: str | None, *, name: str | None = None,
           props: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event as the tracker builds it (schemas/event.v2.json)."""
    e: dict[str, Any] = {"event_id": str(uuid.UUID(int=ids.getrandbits(128), version=4)), "type": type_, "ts": ts,
                         "url": url, "referrer": referrer, "schema_version": 2}
    if name:
        e["name"] = name
    if props:
        e["props"] = props
    return e


def _batches(events: list[dict[str, Any]]) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """The tracker's requests for a visit's events (sorted by time), with when each goes:
    a second after its first event, or at once when 20 are queued or on an outbound click
    (the page is being left)."""
    i = 0
    while i < len(events):
        first = events[i]["ts"]
        j = i
        while j < len(events) and j - i < BATCH_MAX and events[j]["ts"] < first + BATCH_DELAY_MS:
            j += 1
            if events[j - 1].get("name") == "outbound":
                break
        batch = events[i:j]
        last = batch[-1]
        leaving = last.get("name") == "outbound"
        yield batch, (last["ts"] if leaving or len(batch) == BATCH_MAX else first + BATCH_DELAY_MS)
        i = j


def take_events(deliveries: Iterable[Delivery], n: int) -> Iterator[Delivery]:
    """The requests carrying the first ``n`` events (the last one cut short if need be)."""
    left = n
    for d in deliveries:
        if left <= 0:
            return
        if len(d.events) > left:
            d = replace(d, events=d.events[:left])
        left -= len(d.events)
        yield d


def skip_before(deliveries: Iterable[Delivery], instant_ms: int) -> Iterator[Delivery]:
    """The requests from ``instant_ms`` on (those before are not sent at all)."""
    return (d for d in deliveries if d.send_at >= instant_ms)


def span_of(model: Model, n: int) -> int:
    """Simulated milliseconds from the model's start to the sending of its ``n``-th event."""
    last = model.start_ms
    for d in take_events(model.deliveries(), n):
        last = d.send_at
    return last - model.start_ms

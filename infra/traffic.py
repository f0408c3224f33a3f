"""Realistic demo traffic: visitors with sessions of page flows, referrers, bounces and
clicks, sent through the collector's real HTTP endpoint."""
from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

log = logging.getLogger(__name__)

PAGES = ["/", "/pricing", "/blog", "/blog/lambda-architecture", "/blog/hll-sketches", "/docs", "/docs/install",
         "/about", "/contact", "/signup"]
REFERRERS = [None, None, "https://www.google.com/", "https://duckduckgo.com/", "https://news.ycombinator.com/",
             "https://twitter.com/", "https://www.reddit.com/r/dataengineering/", "https://partner.example/links"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
]


@dataclass
class Visit:
    site: str
    user_agent: str
    events: list[dict[str, Any]]


def session(rng: random.Random, site: str, domain: str, start: datetime, visitor: str | None) -> Visit:
    """One visit: a landing page, then a few more pages (or none: a bounce), maybe a click."""
    n_pages = 1 if rng.random() < 0.4 else rng.randint(2, 6)
    t = start
    referrer = rng.choice(REFERRERS)
    events = []
    page = rng.choice(PAGES[:6])
    for i in range(n_pages):
        events.append({"event_id": str(uuid.uuid4()), "type": "pageview", "ts": int(t.timestamp() * 1000),
                       "url": f"https://{domain}{page}", "referrer": referrer if i == 0 else f"https://{domain}/",
                       **({"visitor_id": visitor} if visitor else {})})
        if rng.random() < 0.2:
            events.append({"event_id": str(uuid.uuid4()), "type": "click", "ts": int(t.timestamp() * 1000) + 1500,
                           "url": f"https://{domain}{page}", **({"visitor_id": visitor} if visitor else {})})
        t += timedelta(seconds=rng.randint(5, 90))
        page = rng.choice(PAGES)
    return Visit(site, rng.choice(USER_AGENTS), events)


def visits_over(rng: random.Random, sites: dict[str, str], start: datetime, end: datetime, n: int) -> list[Visit]:
    """``n`` visits spread over [start, end): e.g. yesterday's traffic, arriving late."""
    span = (end - start).total_seconds()
    out = []
    for _ in range(n):
        site = rng.choice(list(sites))
        at = start + timedelta(seconds=rng.random() * span * 0.98)
        out.append(session(rng, site, sites[site], at, f"y{rng.randint(1, 400)}"))
    return out


def live_visits(rng: random.Random, sites: dict[str, str]) -> Iterator[Visit]:
    """An endless stream of visits happening now; a third are cookieless."""
    while True:
        site = rng.choice(list(sites))
        visitor = None if rng.random() < 0.33 else f"v{rng.randint(1, 2000)}"
        visit = session(rng, site, sites[site], datetime.now(timezone.utc), visitor)
        # A tracker sends events as they happen: shift the visit so that it ends now.
        shift = visit.events[-1]["ts"] - int(datetime.now(timezone.utc).timestamp() * 1000) + rng.randint(0, 3000)
        for e in visit.events:
            e["ts"] -= shift
        yield visit


def send(collector_url: str, visit: Visit, http: Any) -> int:
    """POST one visit's events as the tracker would; return the HTTP status."""
    r = http.post(f"{collector_url}/api/collect", json={"site": visit.site, "events": visit.events},
                  headers={"User-Agent": visit.user_agent}, timeout=30)
    return r.status_code


def stream(collector_url: str, sites: dict[str, str], rate: float, stop: Any, seed: int = 7) -> None:
    """Send live visits at about ``rate`` events/s until ``stop`` is set; log progress."""
    import requests

    rng = random.Random(seed)
    http = requests.Session()
    sent = refused = 0
    last_note = time.monotonic()
    for visit in live_visits(rng, sites):
        if stop.is_set():
            break
        try:
            status = send(collector_url, visit, http)
        except requests.RequestException:
            status = 0
        if status == 202:
            sent += len(visit.events)
        else:
            refused += len(visit.events)
        if time.monotonic() - last_note > 30:
            log.info("traffic: %d events accepted, %d refused so far", sent, refused)
            last_note = time.monotonic()
        stop.wait(len(visit.events) / rate)

"""The tracker (collector/static/tracker.js) in a real Chromium (Playwright): a page served
from 127.0.0.1 loads it from the collector; what arrives in Kafka `events` is read."""
from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from store.registry import Registry
from tests.helpers import KafkaTail, wait_for

UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


def unique_of_site(tail: KafkaTail, site: str) -> list[dict]:
    """The site's events read so far, once each (the layers drop repeated event ids, and
    the tracker may send a batch again when the page is hidden mid-request)."""
    unique = {r["event_id"]: r for r in tail.of_site(site)}
    return sorted(unique.values(), key=lambda r: r["ts"])


def wait_short(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    return wait_for(what, check, timeout=timeout, interval=0.2)


def register(registry: Registry, prefix: str, domains: list[str]) -> str:
    site = f"{prefix}-{uuid.uuid4().hex[:10]}"
    registry.add_site(site, domains, "UTC")
    return site


class Pages(ThreadingHTTPServer):
    """Test pages by path, on 127.0.0.1 (a different origin than the collector's port)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PageHandler)
        self.pages: dict[str, str] = {"/blank.html": "<!doctype html><title>blank</title>"}
        self.origin = f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, path: str, html: str) -> str:
        self.pages[path] = html
        return self.origin + path


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        html = self.server.pages.get(self.path.split("?")[0])  # type: ignore[attr-defined]
        body = (html or "not found").encode()
        self.send_response(200 if html else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pages() -> Iterator[Pages]:
    server = Pages()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def page_html(site: str, collector_url: str) -> str:
    """A call made before the tracker loads, a marked button and an outbound link at the top,
    and a marked banner far below the fold."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>shop</title>
<script>window.parallax = window.parallax || function () {{ (window.parallax.q = window.parallax.q || []).push(arguments) }};
parallax("signup", {{plan: "pro"}});</script>
<script defer data-site="{site}" src="{collector_url}/js/tracker.js"></script></head>
<body style="margin:0">
<button data-parallax-element="cta-signup" style="height:80px">Sign up</button>
<a id="outbound" href="https://elsewhere.test/landing">elsewhere</a>
<div style="height:4000px"></div>
<div id="banner" data-parallax-element="footer-banner" style="height:200px">Banner</div>
</body></html>"""


def _frames(page) -> None:
    """Let the page render twice, so that IntersectionObserver has looked at the layout."""
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r))))")


def _loaded(page) -> None:
    page.wait_for_function("window.parallax && typeof window.parallax.optOut === 'function'")


def _kinds(events: list[dict]) -> Counter:
    return Counter((e["type"], e["name"], json.dumps(e["props"], sort_keys=True)) for e in events)


def _element(type_: str, element: str) -> tuple[str, None, str]:
    return (type_, None, json.dumps({"element": element}))


def test_tracker_in_a_browser(stack, registry, collector_url, chromium, pages, events_tail):
    site = register(registry, "trk", ["127.0.0.1"])
    index = pages.add(f"/{site}/index.html", page_html(site, collector_url))
    step2 = f"{pages.origin}/{site}/app/step2"
    context = chromium.new_context()
    context.route("https://elsewhere.test/**", lambda route: route.fulfill(body="<p>elsewhere</p>",
                                                                              content_type="text/html"))
    page = context.new_page()

    def has(what: str, *expected: tuple, count: int = 1) -> list[dict]:
        """Wait until each expected (type, name, props) was seen ``count`` times."""
        def seen() -> list[dict] | None:
            events = unique_of_site(events_tail, site)
            kinds = _kinds(events)
            return events if all(kinds[k] >= count for k in expected) else None

        return wait_short(what, seen)

    try:
        page.goto(index)
        _loaded(page)
        has("the pageview, the call queued before load, the visible button's impression",
            ("pageview", None, "null"), ("custom", "signup", '{"plan": "pro"}'), _element("impression", "cta-signup"))

        page.click("[data-parallax-element=cta-signup]")
        has("the click on the marked button", _element("click", "cta-signup"))

        page.locator("#banner").scroll_into_view_if_needed()
        has("the banner's impression once scrolled into view", _element("impression", "footer-banner"))
        for _ in range(2):  # seen again in the same page view: no second impression
            page.evaluate("window.scrollTo(0, 0)")
            _frames(page)
            page.locator("#banner").scroll_into_view_if_needed()
            _frames(page)
        page.evaluate("window.scrollTo(0, 0)")
        _frames(page)

        page.evaluate("path => history.pushState({}, '', path)", f"/{site}/app/step2")
        page.evaluate("path => history.replaceState({}, '', path)", f"/{site}/app/step2")  # same URL: no page view
        has("the SPA navigation's pageview and its impression", ("pageview", None, "null"),
            _element("impression", "cta-signup"), count=2)

        page.evaluate("location.hash = 'details'")
        has("the hash change's pageview", ("pageview", None, "null"), _element("impression", "cta-signup"), count=3)

        page.evaluate("parallax('purchase', {amount: 42, gift: false, nested: {dropped: true}})")
        page.click("#outbound")
        page.wait_for_url("https://elsewhere.test/landing")
        events = has("the outbound click, sent as the page leaves",
                     ("click", "outbound", '{"url": "https://elsewhere.test/landing"}'))
        assert context.cookies() == []
    finally:
        context.close()

    views = [e for e in events if e["type"] == "pageview"]
    assert [(v["url"], v["referrer"]) for v in views] == [
        (index, None), (step2, index), (step2 + "#details", step2)]  # in-app referrer: the previous page
    assert _kinds(events) == Counter({
        ("pageview", None, "null"): 3,
        _element("impression", "cta-signup"): 3,  # once per page view
        _element("impression", "footer-banner"): 1,
        _element("click", "cta-signup"): 1,
        ("click", "outbound", '{"url": "https://elsewhere.test/landing"}'): 1,
        ("custom", "signup", '{"plan": "pro"}'): 1,
        ("custom", "purchase", '{"amount": "42", "gift": "false"}'): 1,  # values as strings; objects dropped
    })
    assert all(e["schema_version"] == 2 for e in events)
    assert len({e["visitor_id"] for e in events}) == 1  # derived by the collector, no cookie
    assert all(re.match(UUID4, e["event_id"]) for e in events)


def test_opted_out_visitors_send_nothing(stack, registry, collector_url, chromium, pages, events_tail):
    """A localStorage opt-out, Do Not Track and Global Privacy Control each silence the
    tracker; a later visit to another site shows that events would have arrived by then."""
    dnt = "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"
    gpc = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    silenced = []
    for name, init_script, opt_out in [("optout", None, True), ("dnt", dnt, False), ("gpc", gpc, False)]:
        site = register(registry, name, ["127.0.0.1"])
        silenced.append(site)
        context = chromium.new_context()
        try:
            if init_script:
                context.add_init_script(init_script)
            page = context.new_page()
            if opt_out:  # the visitor opted out earlier, on this origin
                page.goto(pages.origin + "/blank.html")
                page.evaluate("localStorage.setItem('parallax_ignore', 'true')")
            page.goto(pages.add(f"/{site}/index.html", page_html(site, collector_url)))
            _loaded(page)
            page.click("[data-parallax-element=cta-signup]")
            page.evaluate("parallax('purchase', {amount: 1}); history.pushState({}, '', 'next')")
            _frames(page)
            page.close(run_before_unload=True)  # the page goes away: anything queued would be beaconed now
        finally:
            context.close()

    # The sentinel: another site, visited afterwards; its ids come from the fallback
    # generator (no crypto.randomUUID); optOut() and optIn() act at once.
    sentinel = register(registry, "sentinel", ["127.0.0.1"])
    context = chromium.new_context()
    try:
        context.add_init_script("delete Crypto.prototype.randomUUID")
        page = context.new_page()
        page.goto(pages.add(f"/{sentinel}/index.html", page_html(sentinel, collector_url)))
        _loaded(page)
        page.evaluate("parallax.optOut(); parallax('while-opted-out'); parallax.optIn(); parallax('done')")
        def done() -> list[dict] | None:
            events = unique_of_site(events_tail, sentinel)
            return events if any(e["name"] == "done" for e in events) else None

        events = wait_short("the sentinel's last event", done)
        assert page.evaluate("localStorage.getItem('parallax_ignore')") is None
    finally:
        context.close()

    assert "while-opted-out" not in {e["name"] for e in events}
    assert all(re.match(UUID4, e["event_id"]) for e in events)
    assert {site: unique_of_site(events_tail, site) for site in silenced} == {site: [] for site in silenced}


def test_tracker_retries_what_may_succeed_and_drops_what_cannot(stack, registry, collector_url, chromium, pages,
                                                                events_tail):
    """A 503 is retried with the same events after its Retry-After; a 400 batch is dropped
    and the events after it still go out."""
    site = register(registry, "retry", ["127.0.0.1"])
    posted: list[dict] = []

    def collect(route) -> None:
        body = json.loads(route.request.post_data)
        posted.append(body)
        cors = {"Access-Control-Allow-Origin": pages.origin, "Access-Control-Expose-Headers": "Retry-After"}
        if len(posted) == 1:
            route.fulfill(status=503, headers={**cors, "Retry-After": "1"}, json={"error": "Kafka unavailable"})
        elif any(e.get("name") == "rejected" for e in body["events"]):
            route.fulfill(status=400, headers=cors, json={"error": "no valid event in the request"})
        else:
            route.continue_()

    context = chromium.new_context()
    try:
        context.route(f"{collector_url}/api/collect", collect)
        page = context.new_page()
        page.goto(pages.add(f"/{site}/index.html", page_html(site, collector_url)))
        _loaded(page)

        def arrived(name: str | None, type_: str = "custom") -> Callable[[], list[dict]]:
            def check() -> list[dict]:
                page.wait_for_timeout(100)  # Playwright runs the route handler only while called
                return [e for e in unique_of_site(events_tail, site) if e["type"] == type_ and e["name"] == name]
            return check

        wait_short("the pageview, after one 503", arrived(None, "pageview"))
        page.evaluate("parallax('rejected')")
        wait_short("the rejected batch to be tried", lambda: page.wait_for_timeout(100) or len(posted) >= 3)
        page.evaluate("parallax('after')")
        wait_short("the event after the dropped batch", arrived("after"))
    finally:
        context.close()

    first_ids = [e["event_id"] for e in posted[0]["events"]]
    assert [e["event_id"] for e in posted[1]["events"]] == first_ids  # the same batch, retried
    assert sum(e.get("name") == "rejected" for body in posted for e in body["events"]) == 1  # not retried
    assert "rejected" not in {e["name"] for e in unique_of_site(events_tail, site)}

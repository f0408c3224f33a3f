"""The tracker (collector/static/tracker.js) and the collector's CORS rules.

The browser tests drive a real Chromium (Playwright) on a page served from 127.0.0.1 that
loads the tracker from the collector, and read what arrives in Kafka `events`."""
from __future__ import annotations

import gzip
import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from collector.app import origin_allowed
from tests.procs import KafkaTail, wait_for

TRACKER = Path(__file__).resolve().parent.parent / "collector" / "static" / "tracker.js"
UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


# --- without the stack -----------------------------------------------------------------

def test_tracker_is_under_3_kb_gzipped():
    size = len(gzip.compress(TRACKER.read_bytes(), compresslevel=9))
    assert size < 3072, f"tracker.js is {size} bytes gzipped; keep it under 3 KB"


@pytest.mark.parametrize("origin, domains, allowed", [
    ("https://example.test", ["example.test"], True),
    ("https://www.example.test", ["example.test"], True),
    ("http://shop.eu.example.test:8080", ["example.test"], True),
    ("https://notexample.test", ["example.test"], False),
    ("https://example.test.evil.test", ["example.test"], False),
    ("https://evil.test", ["example.test", "other.test"], False),
    ("http://localhost:3000", ["example.test"], False),  # local origins only when registered
    ("http://localhost:3000", ["example.test", "localhost"], True),
    ("http://127.0.0.1:5500", ["127.0.0.1"], True),
    ("http://127.0.0.1:5500", ["127.0.0.1:8000"], False),  # a domain with a port matches that port
    ("http://127.0.0.1:8000", ["127.0.0.1:8000"], True),
    ("https://example.test", ["example.test:443"], True),
    ("http://x.127.0.0.1", ["127.0.0.1"], False),  # no "subdomains" of an IP address
    ("null", ["example.test"], False),  # sandboxed frames, file:// pages
    ("chrome-extension://abc", ["abc"], False),
    ("https://example.test:99999", ["example.test"], False),
    ("https://EXAMPLE.test", ["example.test"], True),
])
def test_origin_allowed(origin, domains, allowed):
    assert origin_allowed(origin, domains) is allowed


def test_tracker_is_served_with_caching_and_gzip():
    from collector.app import create_app
    from infra.settings import load_settings

    client = create_app(load_settings()).test_client()  # serving the script needs no Kafka nor Cassandra
    plain = client.get("/js/tracker.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.data == TRACKER.read_bytes()
    assert plain.mimetype == "text/javascript" and "Content-Encoding" not in plain.headers
    assert plain.cache_control.public and plain.cache_control.max_age > 0
    assert "Accept-Encoding" in plain.vary

    zipped = client.get("/js/tracker.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == TRACKER.read_bytes()
    assert zipped.headers["ETag"] != plain.headers["ETag"]  # two representations, two tags

    again = client.get("/js/tracker.js", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304 and not again.data


# --- Kafka ---------------------------------------------------------------------------

def unique_of_site(tail: KafkaTail, site: str) -> list[dict]:
    """The site's events read so far, once each (the layers drop repeated event ids, and
    the tracker may send a batch again when the page is hidden mid-request)."""
    unique = {r["event_id"]: r for r in tail.of_site(site)}
    return sorted(unique.values(), key=lambda r: r["ts"])


def wait_short(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    return wait_for(what, check, timeout=timeout, interval=0.2)



def register(cassandra, settings, prefix: str, domains: list[str]) -> str:
    from infra.sites import add_site

    site = f"{prefix}-{uuid.uuid4().hex[:10]}"
    add_site(cassandra, settings.cassandra.keyspace, site, domains, "UTC")
    return site


# --- CORS on /api/collect ------------------------------------------------------------

def _body(site: str) -> str:
    return json.dumps({"site": site, "events": [_event()]})


def _event() -> dict:
    return {"event_id": str(uuid.uuid4()), "type": "pageview", "ts": 1_763_800_000_000,
            "url": "https://www.example.test/"}


@pytest.mark.stack
def test_collect_answers_preflight_for_any_origin(collector_url):
    r = requests.options(f"{collector_url}/api/collect", timeout=10, headers={
        "Origin": "https://anywhere.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://anywhere.test"
    assert r.headers["Access-Control-Allow-Methods"] == "POST"
    assert r.headers["Access-Control-Allow-Headers"].lower() == "content-type"
    assert int(r.headers["Access-Control-Max-Age"]) > 0 and "Origin" in r.headers["Vary"]


@pytest.mark.stack
def test_collect_takes_events_only_from_the_sites_domains(stack, collector_url, new_site):
    site = new_site("cors")  # registered for example.test
    url = f"{collector_url}/api/collect"
    text = {"Content-Type": "text/plain;charset=UTF-8"}  # what the tracker and sendBeacon send

    allowed = requests.post(url, data=_body(site), headers={**text, "Origin": "https://www.example.test"}, timeout=30)
    assert allowed.status_code == 202, allowed.text
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://www.example.test"
    assert "Origin" in allowed.headers["Vary"]
    assert "Retry-After" in allowed.headers["Access-Control-Expose-Headers"]

    no_origin = requests.post(url, data=_body(site), headers=text, timeout=30)  # server to server
    assert no_origin.status_code == 202 and "Access-Control-Allow-Origin" not in no_origin.headers

    invalid = KafkaTail(stack, stack.kafka.topic_invalid)
    try:
        refused = _event()
        denied = requests.post(url, data=json.dumps({"site": site, "events": [refused]}),
                               headers={**text, "Origin": "https://evil.test"}, timeout=30)
        assert denied.status_code == 403
        assert "Access-Control-Allow-Origin" not in denied.headers
        error = denied.json()
        assert error["reason"] == "origin_not_allowed"
        assert "https://evil.test" in error["error"] and site in error["error"]
        (kept,) = wait_short("the refused event in events.invalid",
                               lambda: [r for r in invalid.read() if r["site"] == site])
        assert kept["reason"] == "origin_not_allowed" and kept["event"] == refused
        assert kept["errors"] == [error["error"]]
    finally:
        invalid.close()

    local = requests.post(url, data=_body(site), headers={**text, "Origin": "http://localhost:3000"}, timeout=30)
    assert local.status_code == 403  # not registered by this site


# --- in a browser ----------------------------------------------------------------------

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


@pytest.mark.stack
def test_tracker_in_a_browser(stack, cassandra, collector_url, chromium, pages, events_tail):
    site = register(cassandra, stack, "trk", ["127.0.0.1"])
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


@pytest.mark.stack
def test_opted_out_visitors_send_nothing(stack, cassandra, collector_url, chromium, pages, events_tail):
    """A localStorage opt-out, Do Not Track and Global Privacy Control each silence the
    tracker; a later visit to another site shows that events would have arrived by then."""
    dnt = "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"
    gpc = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    silenced = []
    for name, init_script, opt_out in [("optout", None, True), ("dnt", dnt, False), ("gpc", gpc, False)]:
        site = register(cassandra, stack, name, ["127.0.0.1"])
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
    sentinel = register(cassandra, stack, "sentinel", ["127.0.0.1"])
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


@pytest.mark.stack
def test_tracker_retries_what_may_succeed_and_drops_what_cannot(stack, cassandra, collector_url, chromium, pages,
                                                                events_tail):
    """A 503 is retried with the same events after its Retry-After; a 400 batch is dropped
    and the events after it still go out."""
    site = register(cassandra, stack, "retry", ["127.0.0.1"])
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

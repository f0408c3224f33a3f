"""The demo's sample site in a real Chromium: a visit, a click and a sign-up arrive in Kafka."""
from __future__ import annotations

import json
import uuid
from collections import Counter

from tests.helpers import wait_for
from tools import sample_site


def test_a_visit_to_the_sample_site_arrives(stack, registry, collector_url, events_tail, chromium):
    site = f"demo-{uuid.uuid4().hex[:8]}"
    sample_site.register(registry, site)
    server = sample_site.SampleSite(0, site, collector_url, "http://127.0.0.1:1").start()
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("window.parallax && typeof window.parallax.optOut === 'function'")
        page.click("[data-parallax-element=cta]")
        page.wait_for_url("**/signup")
        page.select_option("#plan", "pro")
        page.click("[data-parallax-element=signup-button]")
        page.wait_for_selector("#thanks", state="visible")

        def seen() -> list[dict] | None:
            events = events_tail.of_sites({site})
            kinds = Counter((e["type"], e["name"], json.dumps(e["props"], sort_keys=True)) for e in events)
            wanted = [("pageview", None, "null"), ("click", None, '{"element": "cta"}'),
                      ("custom", "signup", '{"plan": "pro"}')]
            return events if all(kinds[k] for k in wanted) else None

        events = wait_for("the visit's events in Kafka", seen, timeout=60, interval=0.5)
    finally:
        context.close()
        server.stop()
    pages = [e["path"] for e in sorted(events, key=lambda e: e["ts"]) if e["type"] == "pageview"]
    assert pages[:2] == ["/", "/signup"]
    assert ("impression", "cta") in {(e["type"], (e["props"] or {}).get("element")) for e in events}
    assert len({e["visitor_id"] for e in events}) == 1

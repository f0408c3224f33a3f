"""The dashboard in a real Chromium, on the real stack: events sent through the collector,
counted by the speed layer, read and pushed by a serving process. Every figure the page
shows is checked against the API's answer or against the events the test sent.

Screenshots of each page, at a desktop's and a phone's width, are saved under
``var/test-artifacts/dashboard`` (the README shows one of each)."""
from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from batch_layer.job import run_day
from infra.master import append_events
from infra.proc import CliProcess
from speed_layer.queries import archive_frame
from store.accounts import Accounts
from store.registry import Registry
from tests.browser.pages import DESKTOP, PHONE, log_in, new_user, pageviews, send
from tests.helpers import wait_for
from tools.synthetic import archived_event, tracker_event
from views.goals import Goal

UTC = timezone.utc
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "var" / "test-artifacts" / "dashboard"
AXE = REPO / "serving_layer" / "dashboard" / "node_modules" / "axe-core" / "axe.min.js"
# Stored strings come from visitors' browsers: these must show as text, never run.
HOSTILE_PATH = "/<img src=x onerror=window.__xss=1>"
HOSTILE_EVENT = "<script>window.__xss=2</script>"


def _api(serving_url: str, token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    http.base = serving_url  # type: ignore[attr-defined]
    return http


def _report(http: requests.Session, site: str, **params: Any) -> dict:
    r = http.get(f"{http.base}/api/v1/sites/{site}/report", params=params, timeout=30)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def world(stack, accounts: Accounts, registry: Registry, collector_url, speed_process, serving_url) -> dict[str, Any]:
    """Site A with traffic now (pages, a goal, a click, a custom event with a property, and
    hostile strings), site B that A's users may not see; an analyst and a viewer of A."""
    a, b = f"dash-a-{uuid.uuid4().hex[:8]}", f"dash-b-{uuid.uuid4().hex[:8]}"
    for site in (a, b):
        registry.add_site(site, ["example.test"], "UTC")
    registry.add_goal(Goal(a, "Saw pricing", "page", "/pricing"))
    analyst, viewer = new_user(accounts, a, "analyst"), new_user(accounts, a, "viewer")
    token = accounts.create_token(analyst[0], "dashboard tests")[1]
    now = datetime.now(UTC) - timedelta(seconds=30)
    events = (pageviews(["/", "/pricing", "/blog"], "v1", now) + pageviews(["/", "/pricing"], "v2", now)
              + pageviews(["/", HOSTILE_PATH], "v3", now)
              + [tracker_event(int(now.timestamp() * 1000) + 9, "https://example.test/", "click", visitor_id="v1",
                               props={"element": "cta"}),
                 tracker_event(int(now.timestamp() * 1000) + 10, "https://example.test/", "custom", visitor_id="v2",
                               name="signup", props={"plan": "pro"}),
                 tracker_event(int(now.timestamp() * 1000) + 11, "https://example.test/", "custom", visitor_id="v3",
                               name=HOSTILE_EVENT)])
    send(collector_url, a, events)
    http = _api(serving_url, token)
    wait_for("site A's events in the speed views", lambda: _report(http, a)["totals"]["pageviews"] == 7,
             timeout=180, interval=2)
    return {"a": a, "b": b, "analyst": analyst, "viewer": viewer, "api": http, "sent": events}


def _int(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text) or 0)


def kpi(page: Page, metric: str) -> str:
    return page.get_by_test_id(f"kpi-{metric}").inner_text()


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_users_site(context, serving_url, world):
    page = context.new_page()
    page.goto(f"{serving_url}/sites/{world['a']}")
    page.wait_for_url("**/login?**")
    page.get_by_label("Email").fill(world["analyst"][0])
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong email or password")
    assert "/login" in page.url
    page.get_by_label("Password").fill(world["analyst"][1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/sites/{world['a']}")  # back where the login was asked for
    expect(page.get_by_role("heading", level=1)).to_contain_text(world["a"])
    expect(page.get_by_test_id("kpi-pageviews")).to_have_text("7")


def test_live_numbers_change_without_a_reload(context, serving_url, collector_url, world, speed_layer):
    page = log_in(context, serving_url, world["analyst"], f"/sites/{world['a']}?range=today")
    expect(page.get_by_test_id("kpi-pageviews")).to_have_text("7")
    expect(page.get_by_test_id("freshness")).to_contain_text(re.compile(r"live|catching up"))
    before_visitors = _int(page.get_by_test_id("realtime-visitors").inner_text())
    before_bars = int(page.get_by_test_id("minute-bars").get_attribute("data-total"))
    page.evaluate("window.__notReloaded = true")
    now = datetime.now(UTC)
    extra = pageviews(["/live"], "live-1", now) + pageviews(["/live", "/"], "live-2", now)
    send(collector_url, world["a"], extra)
    world["sent"].extend(extra)
    expect(page.get_by_test_id("kpi-pageviews")).to_have_text("10", timeout=60_000)
    expect(page.get_by_test_id("realtime-visitors")).to_have_text(str(before_visitors + 2), timeout=60_000)
    wait_for("the minute bars to count the new events",
             lambda: int(page.get_by_test_id("minute-bars").get_attribute("data-total")) >= before_bars + 3,
             timeout=60, interval=0.5)
    expect(page.get_by_test_id("now-pages")).to_contain_text("/live")
    assert page.evaluate("window.__notReloaded") is True
    # The figures are the API's, which the speed layer counted from what was sent.
    visitors = len({e["visitor_id"] for e in world["sent"]})
    expect(page.get_by_test_id("kpi-visitors")).to_have_text(str(visitors))


def test_a_row_filters_the_dashboard_the_url_keeps_it_and_the_chip_removes_it(context, serving_url, world):
    a, http = world["a"], world["api"]
    page = log_in(context, serving_url, world["analyst"], f"/sites/{a}?range=today")
    pages = page.locator("[data-panel=pages]")
    pages.get_by_role("button", name="/pricing", exact=True).click()
    expect(page.get_by_test_id("filter-chip")).to_have_text(re.compile("Page is /pricing"))
    assert "filters=page%3D%3D%2Fpricing" in page.url
    filtered = _report(http, a, filters="page==/pricing")["totals"]
    expect(page.get_by_test_id("kpi-pageviews")).to_have_text(str(filtered["pageviews"]))
    expect(page.get_by_test_id("kpi-visitors")).to_have_text(str(filtered["visitors"]))
    assert filtered["pageviews"] == sum(e.get("url", "").endswith("/pricing") for e in world["sent"]) == 2

    page.reload()  # the same view from the URL alone
    expect(page.get_by_test_id("filter-chip")).to_have_text(re.compile("Page is /pricing"))
    expect(page.get_by_test_id("kpi-pageviews")).to_have_text(str(filtered["pageviews"]))

    remove = page.get_by_role("button", name="Remove filter: Page is /pricing")
    remove.focus()
    page.keyboard.press("Enter")  # the keyboard alone
    expect(page.get_by_test_id("filter-chip")).to_have_count(0)
    assert "filters=" not in page.url
    expect(page.get_by_test_id("kpi-pageviews")).to_have_text(str(_report(http, a)["totals"]["pageviews"]))


def test_the_keyboard_alone_reaches_and_works_the_controls(context, serving_url, world):
    page = log_in(context, serving_url, world["analyst"], f"/sites/{world['a']}?range=today")
    expect(page.get_by_test_id("kpi-pageviews")).not_to_have_text("…")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    def focused() -> str:
        return page.evaluate("document.activeElement.textContent")

    for _ in range(120):  # Tab through the page until the row of /pricing
        page.keyboard.press("Tab")
        if focused() == "/pricing":
            break
    assert focused() == "/pricing"
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("filter-chip")).to_have_text(re.compile("Page is /pricing"))
    tabs = page.locator("[data-panel=pages] [role=tab]")
    tabs.first.focus()
    page.keyboard.press("ArrowRight")
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    expect(tabs.nth(1)).to_be_focused()
    expect(page.locator("[data-panel=pages] table")).to_contain_text("Entry page")


def _buckets(page: Page) -> tuple[int, int]:
    chart = page.get_by_test_id("chart")
    return int(chart.get_attribute("data-final")), int(chart.get_attribute("data-provisional"))


def test_ranges_and_granularity_switch(context, serving_url, world):
    page = log_in(context, serving_url, world["analyst"], f"/sites/{world['a']}?range=today")
    expect(page.get_by_role("heading", name="Visitors per hour")).to_be_visible()
    page.get_by_label("Range").select_option("yesterday")
    page.wait_for_url("**range=yesterday**")
    wait_for("yesterday's 24 hours", lambda: sum(_buckets(page)) == 24, timeout=30, interval=0.3)
    page.locator("label", has_text="Minute").click()
    page.wait_for_url("**granularity=minute**")
    wait_for("yesterday's 1440 minutes", lambda: sum(_buckets(page)) == 1440, timeout=30, interval=0.3)
    page.get_by_label("Range").select_option("30d")
    expect(page.get_by_role("heading", name="Visitors per day")).to_be_visible()
    wait_for("30 days", lambda: sum(_buckets(page)) == 30, timeout=30, interval=0.3)
    page.get_by_role("button", name=re.compile("^Pageviews")).click()
    expect(page.get_by_role("heading", name="Pageviews per day")).to_be_visible()
    assert "metric=pageviews" in page.url  # the measure replaces the view in the history; a range adds one
    page.go_back()
    expect(page.get_by_role("heading", name="Visitors per minute")).to_be_visible()
    expect(page.get_by_label("Range")).to_have_value("yesterday")


def test_provisional_buckets_and_the_boundary_after_a_batch_run(
        context, serving_url, world, accounts, registry, cassandra, stack, spark, tmp_path):
    site = f"dash-c-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["example.test"], "UTC")
    user = new_user(accounts, site, "viewer")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    path = f"/sites/{site}?range=custom&from={yesterday.date()}&to={today.date()}&granularity=hour"
    page = log_in(context, serving_url, user, path)
    wait_for("48 hours, all provisional", lambda: _buckets(page) == (0, 48), timeout=30, interval=0.3)
    expect(page.get_by_test_id("boundary-line")).to_be_hidden()
    expect(page.get_by_test_id("provisional-band")).to_be_visible()

    # The batch layer computes yesterday from the master dataset: the boundary moves.
    past = [archived_event(site, yesterday + timedelta(hours=h, minutes=5), f"p{h % 4}") for h in range(0, 24, 3)]
    master = str(tmp_path / "master")
    append_events(archive_frame(spark.createDataFrame([(json.dumps(e),) for e in past], "value STRING")), master)
    run_day(spark, cassandra, stack.cassandra.keyspace, master, yesterday.date(), {site: "UTC"})

    def after_reload() -> bool:  # a serving process reads a site's boundary at most every 2 s
        page.reload()
        expect(page.get_by_test_id("chart")).to_be_visible()
        return _buckets(page) == (24, 24)

    wait_for("24 final hours and 24 provisional", after_reload, timeout=30, interval=1)
    line = page.get_by_test_id("boundary-line")
    expect(line).to_be_visible()
    expect(line).to_contain_text("batch boundary")
    assert page.get_by_test_id("chart").get_attribute("data-boundary") == today.isoformat().replace("+00:00", ".000Z")
    canvas = page.locator(".chart-canvas .u-over").bounding_box()
    x = line.bounding_box()["x"]
    assert canvas["x"] + canvas["width"] * 0.45 < x < canvas["x"] + canvas["width"] * 0.55  # half way: 24 of 48
    band = page.get_by_test_id("provisional-band").bounding_box()
    assert abs(band["x"] - x) < 3 and abs(band["x"] + band["width"] - (canvas["x"] + canvas["width"])) < 3
    expect(page.get_by_test_id("kpi-pageviews")).to_have_text(str(len(past)))

    # Hovering a final hour shows that day's drift: the speed layer saw none of these events.
    page.mouse.move(canvas["x"] + canvas["width"] * 0.1, canvas["y"] + canvas["height"] / 2)
    expect(page.get_by_test_id("hover-note")).to_contain_text("final")
    drift = page.get_by_test_id("drift")
    visitors = len({e["visitor_id"] for e in past})
    expect(drift).to_contain_text(f"on {yesterday.date()}, live said 0 visitors, corrected {visitors} ")
    page.mouse.move(canvas["x"] + canvas["width"] * 0.9, canvas["y"] + canvas["height"] / 2)
    expect(page.get_by_test_id("hover-note")).to_contain_text("provisional")


def test_an_alert_arrives_live(context, serving_url, collector_url, world, log_dir, speed_layer):
    a, http = world["a"], world["api"]
    email = world["analyst"][0]
    page = log_in(context, serving_url, world["analyst"], f"/sites/{a}/alerts")
    # The rule is made in the page's editor, as an analyst would.
    page.get_by_label("Name").fill("Live page busy")
    page.get_by_label("Filters").fill("page==/busy")
    page.get_by_label("Threshold").fill("2")
    page.get_by_label("Resolve after (s)").fill("0")
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_test_id("rule")).to_contain_text("Live page busy")
    rules = http.get(f"{serving_url}/api/v1/sites/{a}/alerts", timeout=30).json()["rules"]
    assert [(r["name"], r["recipients"]) for r in rules] == [("Live page busy", {email: "live"})]

    evaluator = CliProcess("dashboard-alerting", ["alerting", "--no-delivery"], log_dir / "dashboard-alerting.log",
                           env={"PARALLAX_ALERTS_TICK_S": "2", "PARALLAX_ALERTS_MIN_INTERVAL_S": "0.5"}).start()
    try:
        page.get_by_role("link", name="Dashboard").click()
        expect(page.get_by_test_id("kpi-pageviews")).not_to_have_text("…")
        send(collector_url, a, pageviews(["/busy"] * 3, "busy-1", datetime.now(UTC)))
        expect(page.get_by_test_id("toast-title")).to_contain_text("Live page busy", timeout=90_000)
        expect(page.get_by_test_id("unread")).to_have_text(re.compile(r"[1-9]"))
        page.get_by_role("button", name=re.compile("^Notifications")).click()
        expect(page.locator("#bell-panel")).to_contain_text("Live page busy")
        page.get_by_role("link", name="Alerts", exact=True).click()
        expect(page.get_by_test_id("rule-state")).to_contain_text("firing since")
    finally:
        evaluator.stop()


def test_the_exported_csv_is_the_apis_answer(context, serving_url, world):
    a, http = world["a"], world["api"]
    page = log_in(context, serving_url, world["analyst"], f"/sites/{a}?range=today&granularity=hour")
    expect(page.get_by_test_id("kpi-pageviews")).not_to_have_text("…")
    link = page.get_by_test_id("export-csv")
    with page.expect_download() as download:
        link.click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    query = dict(re.findall(r"([a-z_]+)=([^&]*)", link.get_attribute("href").split("?", 1)[1]))
    assert query["granularity"] == "hour" and query["compare"] == "previous_period"
    answer = _report(http, a, **{k: requests.utils.unquote(v) for k, v in query.items() if k != "format"})
    assert len(rows) == len(answer["buckets"]) == 24
    for row, bucket in zip(rows, answer["buckets"], strict=True):
        assert row["start"] == bucket["start"] and row["final"] == str(bucket["final"])
        for m in answer["metrics"]:
            want = bucket[m]
            assert (row[m] == "") if want is None else float(row[m]) == pytest.approx(want), (m, row, bucket)
    assert sum(int(r["pageviews"]) for r in rows) == answer["totals"]["pageviews"]


def _socket_answer(page: Page, site: str) -> Any:
    """What the serving layer answers this page's session when it subscribes to ``site``,
    over a raw Socket.IO websocket (Engine.IO v4 frames)."""
    return page.evaluate("""(site) => new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/socket.io/?EIO=4&transport=websocket`);
        const timer = setTimeout(() => reject(new Error("no answer")), 15000);
        ws.onmessage = (m) => {
            if (m.data.startsWith("0")) ws.send("40");
            else if (m.data.startsWith("40")) ws.send(`42${JSON.stringify(["subscribe", {site}])}`);
            else if (m.data === "2") ws.send("3");
            else if (m.data.startsWith("42")) { clearTimeout(timer); ws.close(); resolve(JSON.parse(m.data.slice(2))); }
        };
    })""", site)


def test_a_viewer_of_one_site_cannot_see_another(context, serving_url, world):
    a, b = world["a"], world["b"]
    ghost = f"dash-none-{uuid.uuid4().hex[:8]}"
    page = log_in(context, serving_url, world["viewer"], f"/sites/{a}")
    assert page.get_by_label("Site").locator("option").all_inner_texts() == [a]
    expect(page.get_by_test_id("export-csv")).to_have_count(0)  # exports are an analyst's
    page.goto(f"{serving_url}/sites/{b}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Site not found")
    hidden = page.locator("main").inner_text()
    page.goto(f"{serving_url}/sites/{ghost}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Site not found")
    assert page.locator("main").inner_text().replace(ghost, "SITE") == hidden.replace(b, "SITE")
    # By socket: subscribing to B is answered as subscribing to a site that does not exist.
    to_b, to_ghost = _socket_answer(page, b), _socket_answer(page, ghost)
    assert to_b == ["error", {"event": "subscribe", "status": 404, "error": f"unknown site {b!r}"}]
    assert json.dumps(to_b).replace(b, "SITE") == json.dumps(to_ghost).replace(ghost, "SITE")
    assert _socket_answer(page, a) == ["subscribed", {"site": a}]


def test_stored_strings_show_as_text(context, serving_url, world):
    a, http = world["a"], world["api"]
    page = log_in(context, serving_url, world["analyst"], f"/sites/{a}?range=today")
    pages = page.locator("[data-panel=pages] table")
    expect(pages).to_contain_text(HOSTILE_PATH)
    events = page.locator("[data-panel=events] table")
    expect(events).to_contain_text(HOSTILE_EVENT)
    shown = http.get(f"{serving_url}/api/v1/sites/{a}/breakdown", params={"dimension": "page"}, timeout=30).json()
    assert HOSTILE_PATH in [r["value"] for r in shown["rows"]]
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__xss") is None
    page.locator("[data-panel=pages]").get_by_role("button", name=HOSTILE_PATH, exact=True).click()
    expect(page.get_by_test_id("filter-chip")).to_contain_text(HOSTILE_PATH)
    page.reload()
    expect(page.get_by_test_id("kpi-pageviews")).to_have_text("1")
    assert page.evaluate("window.__xss") is None


AXE_BLOCKING = ("serious", "critical")


def _axe(page: Page) -> list[dict]:
    """axe-core's violations on the page (its script evaluated in the page: the CSP allows
    no injected <script>, and none is needed)."""
    page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in AXE_BLOCKING]


def test_every_page_passes_the_accessibility_check_at_both_widths(chromium, serving_url, world, accounts):
    a = world["a"]
    admin = new_user(accounts, None, None, admin=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = [("dashboard", f"/sites/{a}?range=today"), ("alerts", f"/sites/{a}/alerts"),
             ("notifications", "/notifications"), ("settings", "/settings"), ("admin", "/admin"),
             ("admin-site", f"/admin/sites/{a}")]
    failures = {}
    for width, viewport, scheme in (("desktop", DESKTOP, "light"), ("phone", PHONE, "dark")):
        ctx = chromium.new_context(viewport=viewport, color_scheme=scheme)
        try:
            page = ctx.new_page()
            page.goto(f"{serving_url}/")
            expect(page.get_by_role("button", name="Log in")).to_be_visible()
            failures[f"login-{width}"] = _axe(page)
            page.screenshot(path=ARTIFACTS / f"login-{width}.png", full_page=True)
            page.get_by_label("Email").fill(admin[0])
            page.get_by_label("Password").fill(admin[1])
            page.get_by_role("button", name="Log in").click()
            expect(page.locator(".topbar")).to_be_visible()
            expect(page.locator("html")).to_have_attribute("data-theme", scheme)
            for name, path in pages:
                page.goto(serving_url + path)
                expect(page.locator("main h1")).to_be_visible()
                if name == "dashboard":
                    expect(page.get_by_test_id("kpi-pageviews")).not_to_have_text("…")
                    expect(page.get_by_test_id("chart")).to_be_visible()
                    page.wait_for_load_state("networkidle")
                failures[f"{name}-{width}"] = _axe(page)
                page.screenshot(path=ARTIFACTS / f"{name}-{width}.png", full_page=True)
            if width == "phone":  # nothing wider than the phone's screen
                page.goto(f"{serving_url}/sites/{a}?range=today")
                expect(page.get_by_test_id("chart")).to_be_visible()
                assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        finally:
            ctx.close()
    assert not {k: v for k, v in failures.items() if v}, json.dumps(failures, indent=1)

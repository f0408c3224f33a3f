"""Time to a usable dashboard: from navigation to the first KPI and the chart drawn, for a
30-day range of a site with 30 days of batch views at 1M events a day plus today's speed
views (the report bench's data, made by its setup when missing), in Debian's Chromium
through the Performance API (the page marks `parallax:kpi` and `parallax:chart`).

    .venv/bin/python -m bench.dashboard_bench --loads 10

Cold: each load in a new browser context (no cached asset, a new connection); warm: the
same context reloading (assets from the browser's cache). Before either, one load that is
not counted lets each serving process compute and keep the answers (the report bench
measures that cold computation). Prints the bundle's sizes beside the times. Needs the
local stack (`parallax stack up`).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import uuid
from datetime import datetime, timezone
from typing import Any

import requests
from playwright.sync_api import Page, sync_playwright

from bench.common import machine, pct
from bench.report_bench import SITE, setup
from infra.clients import cassandra_session
from infra.proc import CliProcess, free_port, wait_until
from infra.settings import REPO_ROOT, load_settings
from store.accounts import Accounts, generate_password

UTC = timezone.utc
MANIFEST = REPO_ROOT / "serving_layer" / "dashboard" / "dist" / "manifest.json"
# Navigation start to each mark, and to the moment both are there (usable).
TIMES = """() => {
  const at = (name) => (performance.getEntriesByName(name, "mark")[0] || {}).startTime;
  const nav = performance.getEntriesByType("navigation")[0];
  return {kpi: at("parallax:kpi"), chart: at("parallax:chart"), dom_content_loaded: nav.domContentLoadedEventEnd,
          document_bytes: nav.transferSize};
}"""


def bench_user(settings: Any) -> tuple[str, str]:
    """An admin of the bench's own, with a new password each run (never printed)."""
    session = cassandra_session(settings, settings.cassandra.keyspace)
    try:
        accounts = Accounts(session, settings.cassandra.keyspace)
        email, password = f"bench-dashboard-{uuid.uuid4().hex[:6]}@example.com", generate_password()
        accounts.add_user(email, password, is_admin=True)
        return email, password
    finally:
        session.cluster.shutdown()


def load(page: Page, url: str) -> dict[str, float]:
    page.goto(url)
    page.wait_for_function("() => performance.getEntriesByName('parallax:kpi').length > 0 && "
                           "performance.getEntriesByName('parallax:chart').length > 0", timeout=60_000)
    t = page.evaluate(TIMES)
    t["usable"] = max(t["kpi"], t["chart"])
    return t


def summary(loads: list[dict[str, float]]) -> dict[str, Any]:
    usable = sorted(x["usable"] for x in loads)
    return {"usable_p50_ms": round(statistics.median(usable)), "usable_p90_ms": round(pct(usable, 0.9)),
            "usable_max_ms": round(usable[-1]),
            "kpi_p50_ms": round(statistics.median(x["kpi"] for x in loads)),
            "chart_p50_ms": round(statistics.median(x["chart"] for x in loads)),
            "dom_content_loaded_p50_ms": round(statistics.median(x["dom_content_loaded"] for x in loads)),
            "document_transferred_p50_bytes": round(statistics.median(x["document_bytes"] for x in loads))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2, help="serving processes (one per core)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    if not MANIFEST.exists():
        raise SystemExit("the dashboard is not built: run `make setup`")
    chromium = os.environ.get("PARALLAX_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("no Chromium: apt-get install chromium, or set PARALLAX_CHROMIUM")
    now = datetime.now(UTC)
    master = setup(settings, args.events_per_day, args.days, now.date(), int(now.timestamp() * 1000))
    email, password = bench_user(settings)

    port = free_port()
    svc = CliProcess("serving (dashboard bench)", ["serve", "--port", str(port), "--workers", str(args.workers)],
                     settings.paths.var_dir / "logs" / "bench-dashboard-serving.log",
                     env={"PARALLAX_MASTER_DIR": str(master)}).start()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/sites/{SITE}?range=30d"
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    try:
        wait_until("the serving layer", lambda: requests.get(f"{base}/api/v1/health", timeout=2).ok, 60)
        http = requests.Session()
        csrf = http.get(f"{base}/api/v1/auth/csrf", timeout=30).json()["csrf_token"]
        r = http.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password},
                      headers={"X-CSRFToken": csrf}, timeout=30)
        r.raise_for_status()
        cookie = {"name": "parallax_session", "value": http.cookies["parallax_session"], "url": base}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True)
            viewport = {"width": 1366, "height": 900}
            for _ in range(2 * args.workers):  # each process computes and keeps the answers once
                ctx = browser.new_context(viewport=viewport)
                ctx.add_cookies([cookie])
                load(ctx.new_page(), url)
                ctx.close()
            for i in range(args.loads):
                ctx = browser.new_context(viewport=viewport)
                ctx.add_cookies([cookie])
                cold.append(load(ctx.new_page(), url))
                ctx.close()
                print(f"cold load {i + 1}: {cold[-1]['usable']:.0f} ms", flush=True)
            ctx = browser.new_context(viewport=viewport)
            ctx.add_cookies([cookie])
            page = ctx.new_page()
            load(page, url)  # fills the browser's cache
            for i in range(args.loads):
                warm.append(load(page, url))
                print(f"warm load {i + 1}: {warm[-1]['usable']:.0f} ms", flush=True)
            ctx.close()
            browser.close()
    finally:
        svc.stop()
    manifest = json.loads(MANIFEST.read_text())
    print(json.dumps({"machine": machine(), "url": f"/sites/{SITE}?range=30d", "loads": args.loads,
                      "events_per_day": args.events_per_day, "days": args.days, "workers": args.workers,
                      "cold": summary(cold), "warm": summary(warm), "bundle": manifest["sizes"]}, indent=2))


if __name__ == "__main__":
    main()

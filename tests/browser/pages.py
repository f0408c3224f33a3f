"""What the dashboard's browser tests share: users, events sent through the collector,
logging in through the page."""
from __future__ import annotations

import uuid
from datetime import datetime

import requests
from playwright.sync_api import BrowserContext, Page, expect

from store.accounts import Accounts, generate_password
from tools.synthetic import tracker_event

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def new_user(accounts: Accounts, site: str | None, role: str | None, *, admin: bool = False) -> tuple[str, str]:
    email, password = f"dash-{uuid.uuid4().hex[:8]}@example.test", generate_password()
    accounts.add_user(email, password, name="Dana Board", is_admin=admin)
    if site and role:
        accounts.grant(email, site, role)
    return email, password


def send(collector_url: str, site: str, events: list[dict]) -> None:
    r = requests.post(f"{collector_url}/api/collect", json={"site": site, "events": events},
                      headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36"},
                      timeout=30)
    assert r.status_code == 202 and r.json()["rejected"] == [], r.text


def pageviews(paths: list[str], visitor: str, at: datetime) -> list[dict]:
    return [tracker_event(int(at.timestamp() * 1000) + i, f"https://example.test{p}", "pageview", visitor_id=visitor)
            for i, p in enumerate(paths)]


def log_in(context: BrowserContext, serving_url: str, user: tuple[str, str], path: str = "/") -> Page:
    page = context.new_page()
    page.goto(serving_url + path)
    page.wait_for_url("**/login?**")
    page.get_by_label("Email").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    page.get_by_label("Password").press("Enter")  # the keyboard alone
    expect(page.locator(".topbar")).to_be_visible()
    return page

"""The dashboard's settings and admin pages in Chromium: preferences saved on the account,
the second factor set up and then asked at login, an API token shown once and revoked, a
site registered with its snippet and goal. Each change is checked through the API too."""
from __future__ import annotations

import re
import time
import uuid

import pyotp
import pytest
import requests
from playwright.sync_api import BrowserContext, expect

from store.accounts import Accounts
from store.registry import Registry
from tests.browser.pages import log_in, new_user


@pytest.fixture(scope="module")
def site(registry: Registry) -> str:
    name = f"dash-s-{uuid.uuid4().hex[:8]}"
    registry.add_site(name, ["example.test"], "UTC")
    return name


def test_preferences_are_saved_on_the_account(context: BrowserContext, serving_url, site, accounts: Accounts):
    user = new_user(accounts, site, "viewer")
    page = log_in(context, serving_url, user, "/settings")
    page.get_by_label("Default range").select_option("30d")
    page.locator("select[name=chart]").select_option("bar")
    page.get_by_label("Theme").select_option("dark")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    stored = accounts.user(user[0]).preferences
    assert {k: stored[k] for k in ("range", "chart", "theme")} == {"range": "30d", "chart": "bar", "theme": "dark"}
    # Another browser of the same user: the dashboard opens as preferred.
    other = context.browser.new_context(color_scheme="light")
    try:
        page = log_in(other, serving_url, user, f"/sites/{site}")
        expect(page.get_by_label("Range")).to_have_value("30d")
        expect(page.get_by_role("heading", name="Visitors per day")).to_be_visible()
        expect(page.locator(".chart-type select")).to_have_value("bar")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    finally:
        other.close()


def test_a_second_factor_set_up_in_settings_is_asked_at_login(context: BrowserContext, serving_url, site, accounts):
    user = new_user(accounts, site, "viewer")
    page = log_in(context, serving_url, user, "/settings")
    page.get_by_role("button", name="Set up").click()
    expect(page.get_by_role("img", name="QR code of the authenticator key")).to_be_visible()
    totp = pyotp.TOTP(page.get_by_test_id("totp-secret").inner_text())
    page.get_by_role("textbox", name="Code").fill(totp.now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("Second factor on")
    assert accounts.user(user[0]).totp_enabled

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.get_by_label("Email").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    page.get_by_role("button", name="Log in").click()
    code = page.get_by_label("Authenticator code")
    expect(code).to_be_visible()
    code.fill(totp.at(time.time() + 30))  # the next step's: the current one was spent confirming
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(site)


def test_an_api_token_is_shown_once_and_revoked(context: BrowserContext, serving_url, site, accounts):
    user = new_user(accounts, site, "analyst")
    page = log_in(context, serving_url, user, "/settings")
    page.get_by_label("Name", exact=True).nth(1).fill("nightly export")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("token-secret").inner_text()
    assert secret.startswith("plx_")
    row = page.locator("tr", has_text="nightly export")
    expect(row).to_contain_text("read only")
    me = requests.get(f"{serving_url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert me.status_code == 200 and me.json()["token"]["name"] == "nightly export"
    page.reload()
    expect(page.get_by_test_id("token-secret")).to_have_count(0)  # shown once
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke token nightly export").click()
    expect(page.locator("tr", has_text="nightly export")).to_have_count(0)
    gone = requests.get(f"{serving_url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert gone.status_code == 401


def test_an_admin_registers_a_site_and_gets_its_snippet(context: BrowserContext, serving_url, accounts, registry):
    admin = new_user(accounts, None, None, admin=True)
    site = f"dash-new-{uuid.uuid4().hex[:8]}"
    page = log_in(context, serving_url, admin, "/admin")
    page.get_by_label("Site id").fill(site)
    page.get_by_label("Domains").fill("shop.example.test, www.shop.example.test")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    page.get_by_role("button", name="Add site").click()
    page.wait_for_url(f"**/admin/sites/{site}")
    expect(page.get_by_test_id("snippet")).to_contain_text(f'data-site="{site}"')
    assert registry.site_zones()[site] == "Europe/Paris"
    page.get_by_label("Name", exact=True).fill("Bought")
    page.get_by_label("Kind").select_option("event")
    page.get_by_label("Pattern or event name").fill("purchase")
    page.get_by_role("button", name="Add goal").click()
    expect(page.locator(".rules").first).to_contain_text("Bought")
    assert [(g.name, g.kind, g.pattern) for g in registry.site_goals(site)] == [("Bought", "event", "purchase")]
    page.get_by_role("textbox", name="Domains").fill("shop.example.test")
    page.get_by_role("button", name="Save domains").click()
    expect(page.get_by_text("Domains saved.")).to_be_visible()
    assert set(registry.site(site).domains) == {"shop.example.test"}
    # The new site is in the switcher at once, and its dashboard opens (empty).
    page.get_by_label("Site").select_option(site)
    page.wait_for_url(f"**/sites/{site}")
    expect(page.get_by_test_id("kpi-visitors")).to_have_text(re.compile("^0$"))

"""A headless Chromium for the browser tests: Debian's (Playwright's own download does not
work here), or the one PARALLAX_CHROMIUM names."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.browser.pages import DESKTOP


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    executable = os.environ.get("PARALLAX_CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.skip("no Chromium: install Debian's chromium (make test does) or set PARALLAX_CHROMIUM")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    ctx = chromium.new_context(viewport=DESKTOP, color_scheme="light", accept_downloads=True)
    yield ctx
    ctx.close()

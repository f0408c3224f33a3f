"""The dashboard's pages: one shell for every page path (no data in it, so the same for any
site), built assets cached for good, a clear answer when the dashboard is not built — and
none of it needs Cassandra."""
from __future__ import annotations

import pytest

from infra.settings import load_settings
from serving_layer.app import create_app


@pytest.fixture()
def dist(tmp_path):
    d = tmp_path / "dist"
    (d / "assets").mkdir(parents=True)
    (d / "index.html").write_text('<!doctype html><div id="app"></div><script type="module" src="/assets/app-X.js">'
                                  '</script>')
    (d / "assets" / "app-X.js").write_text("console.log('parallax')")
    return d


def _client(monkeypatch, dist_dir):
    monkeypatch.setenv("PARALLAX_SERVING_DASHBOARD_DIR", str(dist_dir))
    return create_app(load_settings(), live_feed=False).test_client()


@pytest.mark.parametrize("path", ["/", "/login", "/sites/shop", "/sites/no-such-site", "/sites/shop/alerts",
                                  "/settings", "/notifications", "/admin", "/admin/sites/shop"])
def test_every_page_is_the_same_shell(monkeypatch, store_away, dist, path):
    client = _client(monkeypatch, dist)
    page = client.get(path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.data == (dist / "index.html").read_bytes()
    assert page.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in page.headers


def test_assets_are_cached_for_good(monkeypatch, store_away, dist):
    client = _client(monkeypatch, dist)
    asset = client.get("/assets/app-X.js")
    assert asset.status_code == 200 and b"parallax" in asset.data
    assert "max-age=31536000" in asset.headers["Cache-Control"]
    assert client.get("/assets/nothing.js").status_code == 404
    assert client.get("/assets/../index.html").status_code == 404


def test_an_unbuilt_dashboard_says_how_to_build_it(monkeypatch, store_away, tmp_path):
    client = _client(monkeypatch, tmp_path / "nothing-here")
    page = client.get("/")
    assert page.status_code == 503
    assert "make setup" in page.get_json()["error"]

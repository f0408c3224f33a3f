"""The tracker script as the collector serves it, and the CORS rule on a page's Origin."""
from __future__ import annotations

import gzip

import pytest

from collector.app import create_app
from collector.assets import TRACKER
from collector.cors import origin_allowed
from infra.settings import load_settings


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




# --- CORS on /api/collect ------------------------------------------------------------


# --- in a browser ----------------------------------------------------------------------

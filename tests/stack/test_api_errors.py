"""Bad input to the API, as a new user tries it: each refusal is JSON with a message that
says what was wrong (never an HTML page), every answer carries the security headers, and
browsers of other origins are refused unless configured."""
from __future__ import annotations

import pytest
import requests
import socketio

pytestmark = pytest.mark.stack


@pytest.fixture
def client(serving_app):
    return serving_app()


def test_bad_requests_are_400s_that_name_the_parameter(client, new_site):
    site = new_site("err")
    for params, parameter, needle in [
        ({"from": "0001-01-01", "to": "9999-12-31", "granularity": "day"}, None, "'from' must be between"),
        ({"from": "2020-01-01", "to": "2025-12-31", "granularity": "minute"}, "granularity", "minute buckets asked"),
        ({"granularity": "week"}, "granularity", "'granularity'"),
        ({"metrics": "revenue"}, "metrics", "revenue"),
        ({"from": "yesterday"}, None, "'from' must be a date"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "to", "'to' must be after 'from'"),
        ({"granularty": "day"}, "granularty", "'granularty'"),  # a typo is not ignored
        ({"compare": "last_week"}, "compare", "'compare'"),
    ]:
        r = client.get(f"/api/v1/sites/{site}/report", query_string=params)
        body = r.get_json()
        assert r.status_code == 400 and needle in body["error"], (params, body)
        named = body.get("parameter") or [p["parameter"] for p in body.get("problems", [])]
        assert parameter is None or parameter in named, (params, body)


def test_refusals_are_json_never_a_page(client, new_site):
    site = new_site("err")
    r = client.get("/api/v1/no/such/path")
    assert r.status_code == 404 and r.get_json() == {"error": "no such path: /api/v1/no/such/path"}
    r = client.delete(f"/api/v1/sites/{site}/report")
    assert r.status_code == 405 and "GET" in r.headers["Allow"] and "not allowed" in r.get_json()["error"]
    r = client.post(f"/api/v1/sites/{site}/goals", data="name=x", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and "JSON" in r.get_json()["error"]
    r = client.post(f"/api/v1/sites/{site}/goals", data="[1, 2", content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"]
    r = client.patch("/api/v1/me", data=b'{"name": "' + b"x" * 70_000 + b'"}', content_type="application/json")
    assert r.status_code == 413 and "too large" in r.get_json()["error"]
    r = client.get(f"/api/v1/sites/{site}/breakdown", query_string={"dimension": "planet"})
    assert r.status_code == 400 and r.get_json()["parameter"] == "dimension"


def test_security_headers_on_every_answer(client, new_site):
    for r in (client.get("/api/v1/health"), client.get(f"/api/v1/sites/{new_site('hdr')}/report"),
              client.get("/api/v1/nowhere"), client.get("/api/v1/sites/x/report", headers={"Authorization": ""})):
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "same-origin" and r.headers["Cache-Control"] == "no-store"
        assert r.mimetype == "application/json"


def test_cors_is_closed_unless_configured(serving_app):
    preflight = {"Origin": "https://dash.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "Authorization"}
    closed, opened = serving_app(), serving_app(serving={"allowed_origins": ("https://dash.example",)})
    r = closed.options("/api/v1/health", headers=preflight)
    assert "Access-Control-Allow-Origin" not in r.headers
    r = opened.options("/api/v1/health", headers=preflight)
    assert r.headers["Access-Control-Allow-Origin"] == "https://dash.example"
    r = opened.options("/api/v1/health", headers={**preflight, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_sockets_from_another_origin_are_refused(serving_url, admin_token):
    """Engine.IO checks the Origin of the handshake before anything else."""
    handshake = f"{serving_url}/socket.io/?EIO=4&transport=websocket"
    refused = requests.get(handshake, headers={"Origin": "https://evil.example"}, timeout=10)
    assert refused.status_code == 400 and "Not an accepted origin" in refused.text
    own = requests.get(handshake, headers={"Origin": serving_url}, timeout=10)
    assert "Not an accepted origin" not in own.text  # (refused as a handshake without its upgrade)
    sio = socketio.Client(reconnection=False)  # the client sends its own origin
    sio.connect(serving_url, transports=["websocket"], auth={"token": admin_token}, wait_timeout=10)
    assert sio.connected
    sio.disconnect()

"""With Cassandra away, the serving layer still publishes its contract, and everything that
needs the store answers 503 with Retry-After (never a 500, never a stack trace)."""
from __future__ import annotations

import pytest

from infra.settings import load_settings
from serving_layer.app import create_app


@pytest.fixture()
def client(store_away):
    return create_app(load_settings(), live_feed=False).test_client()


def test_the_document_needs_no_store(client):
    doc = client.get("/api/v1/openapi.json")
    assert doc.status_code == 200
    assert doc.get_json()["openapi"].startswith("3.1")


def test_what_needs_the_store_answers_503(client):
    token = client.get("/api/v1/sites/shop/report", headers={"Authorization": "Bearer plx_nothing"})
    assert token.status_code == 503 and token.headers["Retry-After"].isdigit()
    assert "Cassandra" in token.get_json()["error"]
    # A session cookie cannot be read either; the answer says so rather than logging out.
    client.set_cookie("parallax_session", "x" * 40)
    cookie = client.get("/api/v1/me")
    assert cookie.status_code == 503 and cookie.headers["Retry-After"].isdigit()

"""Freshness on the real stack: every report says how far the speed layer has got (the
newest event it processed, its lag behind Kafka in records and seconds, whether it is
stalled), and dashboards receive it pushed."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest
import requests

from infra.clients import create_topics, delete_topics, kafka_producer
from tests.helpers import Socket, wait_for
from tools.synthetic import tracker_event

pytestmark = pytest.mark.stack
UTC = timezone.utc


def _speed(api, serving_url: str, site: str) -> dict:
    r = api.get(f"{serving_url}/api/v1/sites/{site}/report", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["freshness"]["speed"]


def test_reports_say_how_far_the_speed_layer_has_got(speed_layer, collector_url, serving_url, api, new_site):
    site = new_site("fresh")
    newest = datetime.now(UTC).replace(microsecond=0)
    events = [tracker_event(int(newest.timestamp() * 1000) - i * 1000, visitor_id=f"f{i}") for i in range(5)]
    assert requests.post(f"{collector_url}/api/collect", json={"site": site, "events": events}, timeout=30).ok

    def caught_up() -> dict | None:
        speed = _speed(api, serving_url, site)
        done = speed["processed_through"] and datetime.fromisoformat(speed["processed_through"]) >= newest
        return speed if done and speed["lag_records"] == 0 else None

    speed = wait_for("the speed layer to process the events", caught_up, timeout=120)
    assert speed["lag_seconds"] == 0 and speed["stalled"] is False and speed["problem"] is None
    assert datetime.fromisoformat(speed["last_progress"]) >= newest
    report = api.get(f"{serving_url}/api/v1/sites/{site}/report", timeout=30).json()
    assert report["freshness"]["batch_boundary"] is None  # no batch run yet: nothing final
    assert report["freshness"]["batch_gaps"] == []


def test_a_speed_layer_that_does_not_read_is_stalled(stack, serving_app, new_site):
    """A topic nobody reads: everything in it is lag; the lag's age is its oldest record's."""
    topic = f"fresh-{uuid.uuid4().hex[:8]}"
    create_topics(stack, {topic: {"partitions": 2, "config": {}}})
    try:
        client = serving_app(kafka={"topic_events": topic}, serving={"stall_after_s": 1.0, "freshness_refresh_s": 0.5})
        producer = kafka_producer(stack)
        for i in range(7):
            producer.send(topic, key=str(i).encode(), value=b"{}")
        producer.flush()
        producer.close()
        written = time.time()
        time.sleep(2.5)
        speed = client.get(f"/api/v1/sites/{new_site('stall')}/report").get_json()["freshness"]["speed"]
        assert speed["lag_records"] == 7 and speed["stalled"] is True and speed["stalled_since"]
        assert 2.0 <= speed["lag_seconds"] <= time.time() - written + 1
    finally:
        delete_topics(stack, [topic])


def test_dashboards_receive_the_freshness(serving_url, admin_token, new_site):
    site = new_site("push")
    socket = Socket(serving_url, token=admin_token)
    try:
        socket.subscribe(site)
        wait_for("a freshness push", lambda: socket.got("freshness"), timeout=15, interval=0.2)
        pushed = socket.got("freshness")[0]
        assert pushed["site"] == site and set(pushed["freshness"]) == {"batch_boundary", "batch_gaps", "speed"}
        assert "lag_records" in pushed["freshness"]["speed"]
    finally:
        socket.close()

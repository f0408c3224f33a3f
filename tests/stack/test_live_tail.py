"""The live tail on the real stack: events sent through the collector reach a dashboard's
socket counted by the tail, before the speed layer's micro-batch, and the speed views'
counts that replace them are the same; a message that is not an event stops nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from infra.clients import kafka_producer
from tests.helpers import Socket, wait_for
from tools.synthetic import tracker_event

pytestmark = pytest.mark.stack
UTC = timezone.utc


def _minute(pushes: list[dict], source: str, start: str) -> dict | None:
    found = [b for m in pushes if m.get("source") == source for b in m["buckets"] if b["start"] == start]
    return found[-1] if found else None


def test_the_tail_shows_events_first_and_the_speed_views_agree(stack, speed_layer, collector_url, serving_url,
                                                                admin_token, new_site):
    site = new_site("tail")
    socket = Socket(serving_url, token=admin_token)
    producer = kafka_producer(stack)
    producer.send(stack.kafka.topic_events, key=site.encode(), value=b"\x00 not an event {")
    producer.flush()
    producer.close()
    try:
        socket.subscribe(site)

        def send(at: datetime, n: int) -> list[dict]:
            batch = [tracker_event(int(at.timestamp() * 1000) + i, f"https://example.test/p{i % 2}",
                                   "pageview" if i % 3 else "click", visitor_id=f"t{i % 4}") for i in range(n)]
            r = requests.post(f"{collector_url}/api/collect", json={"site": site, "events": batch}, timeout=30)
            assert r.status_code == 202, r.text
            return batch

        def tail_up() -> bool:  # the tail reads from where the topic ends when it starts
            now = datetime.now(UTC)
            send(now, 2)
            return any(m.get("source") == "tail" for m in socket.got("metrics"))

        wait_for("the tail's first push", tail_up, timeout=60, interval=2)
        # A minute no event was sent in before: the tail has seen all of it.
        minute = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        sent = send(minute + timedelta(seconds=1), 6) + send(minute + timedelta(seconds=2), 6)
        expected = {"pageviews": sum(e["type"] == "pageview" for e in sent), "events": len(sent),
                    "visitors": len({e["visitor_id"] for e in sent})}
        start = minute.isoformat()
        def counted_by(source: str) -> bool:
            got = _minute(socket.got("metrics"), source, start)
            return bool(got and {k: got[k] for k in expected} == expected)

        wait_for("the tail's count of the minute", lambda: counted_by("tail"), timeout=30, interval=0.2)
        wait_for("the speed layer's count of the same minute", lambda: counted_by("speed"), timeout=120)
        assert speed_layer.alive(), speed_layer.log_tail()
    finally:
        socket.close()

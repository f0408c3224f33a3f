"""Kill the speed layer mid-stream and restart it from its checkpoint: its views end up
exactly equal to an independent count of what was sent (no loss, no double counting)."""
from __future__ import annotations

import signal
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.helpers import speed_totals, wait_for
from tools.synthetic import tracker_event

pytestmark = pytest.mark.stack
UTC = timezone.utc


def test_speed_layer_restart_replays_without_double_counting(stack, speed_layer, collector_url, cassandra, new_site):
    site = new_site("restart")
    start = datetime.now(UTC) - timedelta(seconds=90)
    batches = 24
    sent: list[str] = []
    failures: list[str] = []
    # The second half is sent once the speed layer has been killed, so that the kill
    # always lands mid-stream, however long the speed layer takes to count the first events.
    killed = threading.Event()

    def send():
        for b in range(batches):
            if b == batches // 2:
                killed.wait(timeout=300)
            # All in two minutes' buckets, so replayed updates hit the same rows.
            events = [tracker_event(int((start + timedelta(seconds=(b * 10 + i) % 120)).timestamp() * 1000),
                                    f"https://example.test/p{i}", visitor_id=f"v{b}-{i}") for i in range(10)]
            r = requests.post(f"{collector_url}/api/collect", json={"site": site, "events": events}, timeout=30)
            if r.status_code != 202:
                failures.append(r.text)
            sent.extend(e["event_id"] for e in events)
            time.sleep(0.5)

    sender = threading.Thread(target=send)
    sender.start()
    wait_for("the speed layer to count some events", lambda: speed_totals(cassandra, stack.cassandra.keyspace, site, start)[0] > 0,
             timeout=240, interval=1)
    speed_layer.stop(signal.SIGKILL)  # no chance to finish the micro-batch in flight
    counted_before = speed_totals(cassandra, stack.cassandra.keyspace, site, start)[0]
    killed.set()
    time.sleep(3)
    speed_layer.start()
    sender.join()
    assert not failures
    assert counted_before < len(sent)

    wait_for("the restarted speed layer to catch up",
             lambda: speed_totals(cassandra, stack.cassandra.keyspace, site, start)[0] == len(sent), timeout=240, interval=2)
    time.sleep(8)  # several more triggers: nothing may be counted twice
    pageviews, _ = speed_totals(cassandra, stack.cassandra.keyspace, site, start)
    assert pageviews == len(sent) == batches * 10
    assert speed_layer.alive(), speed_layer.log_tail()

"""The nightly run's first step: the master dataset holds every event Kafka received before
an instant only once the archive query has committed past them (its recorded progress)."""
from __future__ import annotations

import time
from datetime import UTC, datetime

import requests

from batch_layer.completeness import coverage
from infra.clients import TopicReader
from infra.master import read_table
from store.diagnostics import Diagnostics
from tests.helpers import wait_for
from tools.synthetic import tracker_event


def test_the_archive_is_complete_once_its_query_has_committed_what_kafka_received(
        stack, speed_layer, collector_url, cassandra, spark, new_site):
    site = new_site("complete")
    reader = TopicReader(stack, stack.kafka.topic_events, client_id="test-completeness")
    diagnostics = Diagnostics(cassandra, stack.cassandra.keyspace)
    try:
        wait_for("the archive to have caught up", lambda: coverage(reader, diagnostics, datetime.now(UTC)).complete,
                 timeout=180, interval=2)
        speed_layer.stop()  # the archive query stops: what arrives now is not archived
        events = [tracker_event(int(time.time() * 1000), f"https://x.test/{i}") for i in range(5)]
        assert requests.post(f"{collector_url}/api/collect", json={"site": site, "events": events}, timeout=30).ok
        time.sleep(1)
        after = datetime.now(UTC)
        behind = coverage(reader, diagnostics, after)
        assert not behind.complete and "5 events short" in behind.describe()
        speed_layer.start()
        found = wait_for("the archive to commit them", lambda: (c := coverage(reader, diagnostics, after)).complete
                         and c, timeout=240, interval=2)
        assert "holds every event" in found.describe()
        # What the check said is so: the five events are in the table.
        assert read_table(spark, stack.paths.master_dir).where(f"site = '{site}'").count() == 5
    finally:
        reader.close()

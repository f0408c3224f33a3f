"""Test helpers shared by the test folders: waiting for a condition, reading what reached a
Kafka topic, running a collector of a test's own, counting what the speed layer wrote,
logging in to the serving layer, a dashboard's socket and a live update to push to it."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import requests
import socketio
from datasketches import hll_sketch

from infra.clients import TopicReader, kafka_producer
from infra.proc import CliProcess, free_port
from infra.settings import Settings
from views.sketches import HLL_LG_K

T = TypeVar("T")


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 120, interval: float = 1.0) -> T:
    """Poll ``fn`` until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as exc:  # a service still starting
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


class KafkaTail:
    """What arrives in a Kafka topic from the moment this is created (its end offsets then).

    ``read()`` returns everything up to the topic's end at the time of the call: what
    Kafka acknowledged is all there."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.reader = TopicReader(settings, topic, client_id="parallax-tests").seek_to_end()
        self.raw: list[bytes] = []
        self.records: list[dict] = []

    def read(self) -> list[dict]:
        for message in self.reader.read_to_end():
            self.raw.append(message.value)
            self.records.append(json.loads(message.value))
        return self.records

    def of_sites(self, sites: set[str]) -> list[dict]:
        """The sites' records so far, repeated deliveries included, in arrival order."""
        return [r for r in self.read() if r.get("site") in sites]

    def of_site(self, site: str) -> list[dict]:
        return self.of_sites({site})

    def raw_of_site(self, site: str) -> list[tuple[dict, bytes]]:
        """The site's records with the bytes Kafka holds (to look for what must not be there)."""
        self.read()
        return [(r, raw) for r, raw in zip(self.records, self.raw) if r.get("site") == site]

    def close(self) -> None:
        self.reader.close()


def start_collector(log_dir: Any, name: str, env: dict[str, str] | None = None,
                    workers: int = 2) -> tuple[CliProcess, str]:
    """A collector of the test's own (its settings from ``env``), once it answers /health."""
    port = free_port()
    svc = CliProcess(name, ["collect", "--port", str(port), "--workers", str(workers)], log_dir / f"{name}.log",
                     env=env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{name} health", lambda: requests.get(f"{url}/health", timeout=5).ok, timeout=60)
    except AssertionError:
        svc.stop()
        raise AssertionError(svc.log_tail()) from None
    return svc, url


def speed_totals(cassandra: Any, keyspace: str, site: str, day: datetime) -> tuple[int, int]:
    """The site's pageviews in the speed views of ``day``'s minutes (UTC), and their rows."""
    rows = cassandra.execute(
        f"SELECT pageviews, visitors FROM {keyspace}.speed_views WHERE site=%s AND view_name='traffic' "
        "AND granularity='minute' AND period=%s",
        (site, day.strftime("%Y-%m-%d")),
    )
    rows = list(rows)
    return sum(r.pageviews for r in rows), len(rows)


def sketch(visitors: list[str]) -> bytes:
    """The visitors' HLL sketch, as both layers store it."""
    s = hll_sketch(HLL_LG_K)
    for v in visitors:
        s.update(v)
    return s.serialize_compact()


def login(serving_url: str, email: str, password: str, totp: str | None = None) -> requests.Session:
    """A browser's session with the serving layer: its CSRF token, then the login; the
    session sends the cookie and its CSRF token from then on."""
    http = requests.Session()
    token = http.get(f"{serving_url}/api/v1/auth/csrf", timeout=30).json()["csrf_token"]
    r = http.post(f"{serving_url}/api/v1/auth/login", json={"email": email, "password": password,
                                                            **({"totp": totp} if totp else {})},
                  headers={"X-CSRFToken": token}, timeout=30)
    assert r.status_code == 200, r.text
    http.headers["X-CSRFToken"] = r.json()["csrf_token"]
    return http


class Socket:
    """A dashboard's socket, recording what it receives."""

    def __init__(self, serving_url: str, *, token: str | None = None, cookie: str | None = None) -> None:
        self.events: list[tuple[str, dict]] = []
        self.sio = socketio.Client(reconnection=False)
        for name in ("subscribed", "unsubscribed", "error", "access_ended", "metrics", "freshness", "notification"):
            self.sio.on(name, lambda data, name=name: self.events.append((name, data)))
        self.sio.connect(serving_url, transports=["websocket"], wait_timeout=20,
                         headers={"Cookie": f"parallax_session={cookie}"} if cookie else {},
                         auth={"token": token} if token else None)

    def subscribe(self, site: str) -> None:
        self.sio.emit("subscribe", {"site": site})
        wait_for(f"subscribed to {site}", lambda: ("subscribed", {"site": site}) in self.events, timeout=20)

    def got(self, name: str) -> list[dict]:
        return [d for n, d in self.events if n == name]

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


def publish_live(stack: Settings, site: str, marker: int) -> None:
    """A live update as the speed layer publishes it on `metrics.live`."""
    producer = kafka_producer(stack)
    update = {"site": site, "batch_id": marker, "buckets": [{"start": "2026-12-01T00:00:00+00:00",
                                                               "pageviews": marker, "visitors": 1}]}
    producer.send(stack.kafka.topic_live, key=site.encode(), value=json.dumps(update).encode())
    producer.flush()
    producer.close()

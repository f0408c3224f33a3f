"""The collector bench's yardsticks: bare Kafka producers sending the same enriched events,
kafka-python (the design's client) and the collector's own (confluent-kafka), as fast as
they can, one process each."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from typing import Any

import psutil

from bench.collector_load import BATCH, SITE, USER_AGENT, make_batches
from bench.common import CpuWindow, wait_ready
from collector.enrichment import describe_client
from collector.events import enrich, kafka_key
from collector.kafka_sink import connect
from infra.clients import end_offsets, json_bytes, kafka_producer
from infra.settings import Settings, load_settings


def topic_count(settings: Settings, topic: str) -> int:
    """Messages in ``topic`` so far: the sum of its partitions' end offsets."""
    return sum(end_offsets(settings, topic).values())


def bare_producer(cfg: dict[str, Any], ready: Any, go: Any, start: Any, results: Any) -> None:
    """One process, one kafka-python producer with the collector's settings, sending the
    enriched events (serialized beforehand) one message per event, with the collector's
    keys, as fast as it can."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = load_settings()
    client = describe_client("127.0.0.1", USER_AGENT, None)
    received = int(time.time() * 1000)
    payloads = [(kafka_key(SITE, visitor), json_bytes(enrich(e, SITE, salt=b"s" * 32, ip="127.0.0.1",
                                                             user_agent=USER_AGENT, received_at=received,
                                                             client=client)))
                for visitor, events in make_batches(cfg["pool"] // BATCH, seed=cfg["seed"]) for e in events]
    topic, n = cfg["topic"], cfg["events"]
    if cfg["client"] == "confluent-kafka":
        confluent_producer(cfg, payloads, ready, go, start, results)
        return
    producer = kafka_producer(settings, max_block_ms=5000, bootstrap_timeout_ms=5000, request_timeout_ms=5000,
                              delivery_timeout_ms=int(settings.collector.kafka_ack_timeout_s * 1000))
    for p in range(3):  # metadata and a connection, untimed
        producer.send(topic, value=b"{}", partition=p).get(timeout=30)
    ready.put(os.getpid())
    go.wait()
    while time.monotonic() < start.value:
        time.sleep(0.0005)
    c0 = os.times()
    k, window, pending = len(payloads), cfg["window"], deque()
    for i in range(n):
        key, value = payloads[i % k]
        pending.append(producer.send(topic, key=key, value=value))
        # At most ``window`` records unacknowledged: beyond the producer's buffer, records
        # would wait longer than the delivery timeout and expire unsent. get() raises if
        # one failed: only acknowledged records are counted.
        if len(pending) > window:
            pending.popleft().get(timeout=60)
    producer.flush(timeout=120)
    for future in pending:
        future.get(timeout=60)
    done, c1 = time.monotonic(), os.times()
    producer.close(timeout=10)
    results.put({"events": n, "done": done, "cpu_s": c1.user + c1.system - c0.user - c0.system,
                 "payload_bytes": round(sum(len(v) for _, v in payloads) / k)})


def confluent_producer(cfg: dict[str, Any], payloads: list[tuple[bytes, bytes]], ready: Any, go: Any, start: Any,
                       results: Any) -> None:
    """The collector's own producer (``collector.kafka_sink``: librdkafka with its settings,
    the delivery-report thread) without HTTP or the pipeline: 20 records at a time, each
    batch's acknowledgements awaited as a request's are, at most ``window`` records unacknowledged."""
    sink = connect(load_settings())
    topic, n = cfg["topic"], cfg["events"]

    def acknowledged(acks: Any) -> None:
        if not acks.done.wait(60) or acks.error is not None:
            raise RuntimeError(f"not acknowledged: {acks.error}")

    for p in range(3):  # metadata and a connection, untimed
        acknowledged(sink.send([(topic, f"warm-up {p}".encode(), b"{}")]))
    ready.put(os.getpid())
    go.wait()
    while time.monotonic() < start.value:
        time.sleep(0.0005)
    c0 = os.times()
    k, pending = len(payloads), deque()
    for i in range(0, n, BATCH):
        pending.append(sink.send([(topic, *payloads[j % k]) for j in range(i, min(i + BATCH, n))]))
        if len(pending) * BATCH > cfg["window"]:
            acknowledged(pending.popleft())
    for acks in pending:
        acknowledged(acks)
    done, c1 = time.monotonic(), os.times()
    sink.retire()
    results.put({"events": n, "done": done, "cpu_s": c1.user + c1.system - c0.user - c0.system,
                 "payload_bytes": round(sum(len(v) for _, v in payloads) / k)})


def run_bare(settings: Settings, topic: str, events: int, procs: int, services: dict[str, list[Any]],
             client: str = "kafka-python") -> dict[str, Any]:
    """``procs`` bare producers (one per process) sending ``events`` in all, started together."""
    ctx = mp.get_context("spawn")
    ready, results, go, start = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    before = topic_count(settings, topic)
    cfgs = [{"topic": topic, "events": events // procs, "pool": 20_000, "seed": 7 + i, "window": 5_000,
             "client": client}
            for i in range(procs)]
    workers = [ctx.Process(target=bare_producer, args=(cfg, ready, go, start, results), daemon=True) for cfg in cfgs]
    for p in workers:
        p.start()
    try:
        wait_ready(ready, workers)
        window = CpuWindow({"bare_producer": [psutil.Process(p.pid) for p in workers], **services})
        start.value = time.monotonic() + 0.2
        go.set()
        time.sleep(0.2)
        window.mark()
        parts = [results.get(timeout=600) for _ in workers]
        cores = window.cores()
    finally:
        for p in workers:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    sent = sum(p["events"] for p in parts)
    elapsed = max(p["done"] for p in parts) - start.value
    out = {"client": client, "producers": procs, "events": sent, "seconds": round(elapsed, 2),
           "events_per_s": round(sent / elapsed),
           "payload_bytes": parts[0]["payload_bytes"],
           "producer_cpu_us_per_event": round(sum(p["cpu_s"] for p in parts) / sent * 1e6, 1)}
    out["kafka_messages"] = topic_count(settings, topic) - before - 3 * procs  # less the warm-ups
    out["nothing_missing"] = out["kafka_messages"] == sent
    out["cores"] = cores
    print(json.dumps({"run": "bare_producer", **out}), flush=True)
    return out

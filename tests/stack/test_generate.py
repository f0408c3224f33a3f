"""`parallax generate` through the real collector: what it acknowledged arrives in Kafka
exactly as the truth says, and cookieless visitors get one derived id each."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import KafkaTail, wait_for
from tools.generator.truth import read_truth, summary_path


def _generate(collector_url: str, truth: Path, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "cli", "generate", "--collector", collector_url,
                             "--truth", str(truth), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(summary_path(truth).read_text())


def _arrived(tail: KafkaTail, sites: set[str], truth: list[dict]) -> list[dict]:
    """The sites' records in Kafka, once they are exactly the truth's copies."""
    expected = Counter(r["event_id"] for r in truth)

    def complete() -> list[dict] | None:
        got = tail.of_sites(sites)
        return got if Counter(r["event_id"] for r in got) == expected else None

    return wait_for("the generated events in Kafka, each copy once", complete, timeout=90, interval=0.5)


def test_generated_traffic_arrives_in_kafka_as_the_truth_says(stack, cassandra, registry, collector_url, events_tail,
                                                              tmp_path):
    prefix = f"g{uuid.uuid4().hex[:6]}-"
    truth_path = tmp_path / "truth.jsonl"
    summary = _generate(collector_url, truth_path, "--sites", "2", "--prefix", prefix, "--max", "--events", "400",
                        "--window", "3h", "--seed", "11", "--duplicates", "0.05", "--late", "0.05")
    truth = read_truth(truth_path)
    sites = {f"{prefix}shop", f"{prefix}blog"}
    assert {r["site"] for r in truth} == sites and summary["totals"]["events"] == 400

    kafka = _arrived(events_tail, sites, truth)  # every acknowledged copy, duplicates as sent
    assert any(r["duplicate"] for r in truth) and any(r["late_ms"] for r in truth)
    unique = {r["event_id"]: r for r in kafka}
    assert len(unique) == len({r["event_id"] for r in truth}) == 400
    for t in truth:
        k = unique[t["event_id"]]
        assert (k["site"], k["type"], k["ts"], k["url"], k["path"], k["referrer"], k["name"], k["visitor_id"]) == \
            (t["site"], t["type"], t["ts"], t["url"], t["path"], t["referrer"], t["name"], t["visitor"])
        assert (k["device"], k["browser"], k["os"]) == (t["device"], t["browser"], t["os"])
        assert k["props"] == ({key: json.dumps(v) if isinstance(v, bool) else str(v)
                               for key, v in t["props"].items()} if t["props"] else None)

    zones = {r.site: r.timezone for r in cassandra.execute(f"SELECT site, timezone FROM {stack.cassandra.keyspace}.sites")}
    assert zones[f"{prefix}shop"] == "Europe/Paris" and zones[f"{prefix}blog"] == "America/New_York"
    goals = {(g.site, g.name) for g in registry.goals()}
    assert {(f"{prefix}shop", "Purchase"), (f"{prefix}blog", "Newsletter")} <= goals


def test_cookieless_visitors_are_told_apart_by_the_collector(stack, collector_url, events_tail, tmp_path):
    """Without visitor_id, the collector derives one from address, User-Agent and the
    day's salt: one per generated visitor (within a UTC day)."""
    prefix = f"c{uuid.uuid4().hex[:6]}-"
    truth_path = tmp_path / "truth.jsonl"
    _generate(collector_url, truth_path, "--sites", "1", "--prefix", prefix, "--max", "--events", "150",
              "--window", "2h", "--cookieless", "--seed", "4")
    truth = read_truth(truth_path)
    kafka = {r["event_id"]: r for r in _arrived(events_tail, {f"{prefix}shop"}, truth)}
    pairs = {(t["visitor"], kafka[t["event_id"]]["visitor_id"]) for t in truth}
    if len({t["sent_at"] // 86_400_000 for t in truth}) > 1:
        pytest.skip("the run crossed UTC midnight: the salt, and so the derived ids, changed")
    assert len(pairs) == len({v for v, _ in pairs}) == len({k for _, k in pairs}) > 5

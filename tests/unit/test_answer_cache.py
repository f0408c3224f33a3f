"""Kept answers: one computation per key however many ask at once, a new one when the data's
versions change, and an answer computed on demand refreshed in the background while the
earlier one is given."""
from __future__ import annotations

import threading
import time

from serving_layer.cache import AnswerCache
from serving_layer.recent import Recent


def test_one_computation_per_key_however_many_ask():
    cache, calls, gate = AnswerCache(), [], threading.Event()

    def compute() -> str:
        calls.append(1)
        gate.wait(5)
        return "answer"

    got: list[str] = []
    askers = [threading.Thread(target=lambda: got.append(cache.get(("q", 1), compute))) for _ in range(8)]
    for a in askers:
        a.start()
    time.sleep(0.2)
    gate.set()
    for a in askers:
        a.join()
    assert got == ["answer"] * 8 and len(calls) == 1
    assert cache.get(("q", 2), lambda: "newer data") == "newer data"  # a new version: computed again


def test_an_on_demand_answer_is_refreshed_in_the_background():
    cache, gate = AnswerCache(), threading.Event()
    assert cache.get(("q", "v1"), lambda: "old", question="q") == "old"

    def slow() -> str:
        gate.wait(5)
        return "new"

    assert cache.get(("q", "v2"), slow, question="q") == "old"  # at once, while "new" is computed
    gate.set()
    deadline = time.monotonic() + 5
    while cache.get(("q", "v2"), slow, question="q") != "new" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get(("q", "v2"), slow, question="q") == "new"
    assert cache.get(("other", "v1"), lambda: "its own", question="other") == "its own"


def test_a_failed_refresh_keeps_the_earlier_answer():
    cache = AnswerCache()
    cache.get(("q", 1), lambda: "old", question="q")

    def broken() -> str:
        raise RuntimeError("the archive is away")

    assert cache.get(("q", 2), broken, question="q") == "old"
    time.sleep(0.2)
    assert cache.get(("q", 2), broken, question="q") == "old"


def test_recent_values_are_read_again_after_their_time():
    reads: list[int] = []
    recent = Recent(0.2)
    assert [recent.get("k", lambda: reads.append(1) or len(reads)) for _ in range(3)] == [1, 1, 1]
    time.sleep(0.25)
    assert recent.get("k", lambda: reads.append(1) or len(reads)) == 2
    recent.forget()
    assert recent.get("k", lambda: reads.append(1) or len(reads)) == 3
    assert Recent(0).get("k", lambda: "x") == "x"

"""Answers kept while the data they were computed from has not changed.

A report's answer depends on the site's batch views (they change when a batch run writes
the site: its boundary and last run), on the speed views if its range reaches past the
boundary (they change with each micro-batch of the speed queries), and on the master
dataset if it was computed from it (it changes with each commit of the archive query). The
key of a kept answer holds those versions beside the question, so a kept answer is never
stale: it is only ever the answer computed from the same data. Dashboards ask the same
questions over and over, between micro-batches and between batch runs: they are answered
from here. One computation per key runs at a time; callers asking meanwhile wait for it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class AnswerCache:
    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._answers: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Event] = {}
        self.hits = self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The kept answer for ``key``, or ``compute()``'s (kept for next time)."""
        while True:
            with self._lock:
                if key in self._answers:
                    self._answers.move_to_end(key)
                    self.hits += 1
                    return self._answers[key]
                pending = self._computing.get(key)
                if pending is None:
                    pending = self._computing[key] = threading.Event()
                    self.misses += 1
                    break
            pending.wait()  # another thread computes it; then read what it kept (or compute, if it failed)
        try:
            answer = compute()
            with self._lock:
                self._answers[key] = answer
                while len(self._answers) > self.max_entries:
                    self._answers.popitem(last=False)
            return answer
        finally:
            with self._lock:
                self._computing.pop(key, None)
            pending.set()

"""Answers kept while the data they were computed from has not changed.

A report's answer depends on the site's batch views (they change when a batch run writes
the site: its boundary and last run), on the speed views if its range reaches past the
boundary (they change with each micro-batch of the speed queries), and on the master
dataset if it was computed from it (it changes with each commit of the archive query). The
key of a kept answer holds those versions beside the question, so a kept answer is never
stale: it is only ever the answer computed from the same data. Dashboards ask the same
questions over and over, between micro-batches and between batch runs: they are answered
from here. One computation per key runs at a time; callers asking meanwhile wait for it.

An answer computed on demand from the master dataset takes seconds over a long range: when
the data has changed, the answer from before is given (it says when it was computed) while
the new one is computed in the background, once.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)


class AnswerCache:
    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._answers: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Event] = {}
        self._latest: dict[Hashable, Hashable] = {}  # a question -> the key of its newest answer
        self.hits = self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], Any], question: Hashable | None = None) -> Any:
        """The kept answer for ``key``, or ``compute()``'s (kept for next time). With
        ``question`` (the key without the data's versions): while ``key``'s answer is
        computed, an earlier answer to the same question is given instead."""
        while True:
            with self._lock:
                if key in self._answers:
                    self._answers.move_to_end(key)
                    self.hits += 1
                    return self._answers[key]
                earlier = self._answers.get(self._latest.get(question)) if question is not None else None
                if earlier is not None:
                    if key not in self._computing:
                        self._computing[key] = threading.Event()
                        threading.Thread(target=self._refresh, args=(key, compute, question), daemon=True).start()
                    self.hits += 1
                    return earlier
                pending = self._computing.get(key)
                if pending is None:
                    pending = self._computing[key] = threading.Event()
                    self.misses += 1
                    break
            pending.wait()  # another thread computes it; then read what it kept (or compute, if it failed)
        try:
            return self._keep(key, compute(), question)
        finally:
            with self._lock:
                self._computing.pop(key, None)
            pending.set()

    def _keep(self, key: Hashable, answer: Any, question: Hashable | None) -> Any:
        with self._lock:
            self._answers[key] = answer
            if question is not None:
                self._latest[question] = key
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)
            if len(self._latest) > 4 * self.max_entries:
                self._latest = {q: k for q, k in self._latest.items() if k in self._answers}
        return answer

    def _refresh(self, key: Hashable, compute: Callable[[], Any], question: Hashable) -> None:
        try:
            self._keep(key, compute(), question)
        except Exception:  # the earlier answer stays; the next asking tries again
            log.exception("computing a newer answer failed")
        finally:
            with self._lock:
                pending = self._computing.pop(key, None)
            if pending is not None:
                pending.set()

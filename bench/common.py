"""What the benchmarks share: the CPU each process used in a timed window, the local
stack's processes, the machine they ran on, waiting for worker processes, and a reader's
token on the serving layer."""
from __future__ import annotations

import math
import os
import platform
import queue
import time
from typing import Any

import psutil

from infra.clients import cassandra_session
from infra.proc import read_pid
from infra.settings import Settings
from store.accounts import Accounts, generate_password
from store.registry import Registry


def service_processes(settings: Settings) -> dict[str, list[psutil.Process]]:
    """The local Kafka and Cassandra (empty where one is not running)."""
    out = {}
    for name in ("kafka", "cassandra"):
        pid = read_pid(settings.paths.var_dir / "run" / f"{name}.pid")
        out[name] = [psutil.Process(pid)] if pid else []
    return out


def cpu_seconds(procs: list[Any]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # exited
            pass
    return total


def system_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    t = psutil.cpu_times()
    total = sum(t)
    return total - t.idle - getattr(t, "iowait", 0.0), total


class CpuWindow:
    """CPU seconds each group of processes (and the whole machine) used between two marks."""

    def __init__(self, groups: dict[str, list[Any]]) -> None:
        self.groups = groups
        self.start: dict[str, float] = {}

    def mark(self) -> None:
        self.t = time.monotonic()
        self.start = {name: cpu_seconds(ps) for name, ps in self.groups.items()}
        self.start["_busy"], self.start["_total"] = system_busy()

    def cores(self) -> dict[str, float]:
        """Cores used on average in the window, per group; 'other' is the rest of the machine."""
        wall = time.monotonic() - self.t
        used = {name: cpu_seconds(ps) - self.start[name] for name, ps in self.groups.items()}
        busy, _ = system_busy()
        machine = busy - self.start["_busy"]
        out = {name: round(s / wall, 2) for name, s in used.items()}
        # "worker:<pid>" groups are parts of another group (its processes one by one).
        counted = sum(s for name, s in used.items() if not name.startswith("worker:"))
        out["other"] = round(max(0.0, machine - counted) / wall, 2)
        out["machine_busy"] = round(machine / wall, 2)
        return out


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return f"{platform.node()} {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}"


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def wait_ready(ready: Any, workers: list[Any], timeout: float = 300.0) -> None:
    """Every process said it is ready; fail at once if one died first."""
    deadline, waiting = time.monotonic() + timeout, len(workers)
    while waiting:
        try:
            ready.get(timeout=1)
            waiting -= 1
        except queue.Empty:
            dead = [p.exitcode for p in workers if p.exitcode is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"a benchmark process exited ({dead}) or did not get ready in time") from None


def reader_token(settings: Settings, bench: str, sites: dict[str, str] | None = None) -> str:
    """A read-only API token of the bench's own admin (added on the first run: no password
    is ever used), and the bench's sites (name -> domain) registered."""
    session = cassandra_session(settings, settings.cassandra.keyspace)
    try:
        for site, domain in (sites or {}).items():
            Registry(session, settings.cassandra.keyspace).add_site(site, [domain], "UTC")
        accounts = Accounts(session, settings.cassandra.keyspace)
        email = f"bench-{bench}@example.com"
        if accounts.user(email) is None:
            accounts.add_user(email, generate_password(), is_admin=True)
        return accounts.create_token(email, f"{bench} bench", read_only=True)[1]
    finally:
        session.cluster.shutdown()

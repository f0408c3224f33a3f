"""The speed bench's verdict, from the queries' progress: when the streaming state holds what
a live stream's would, and the rate the layer sustains from then on."""
from __future__ import annotations


def interval_seconds(text: str) -> float:
    """Seconds of a Spark interval such as "10 minutes"."""
    number, unit = text.split()
    return float(number) * {"second": 1, "minute": 60, "hour": 3600}[unit.rstrip("s")]


# The dedupe is full once it holds this share of a watermark's worth of ids. It levels
# off a little under the whole: the watermark trails the latest event time, which runs up
# to a minute ahead (the jitter), and it moves once per micro-batch.
FULL = 0.9


def ids_held(progress: list[dict]) -> list[int]:
    """Event ids in the dedupe state after each micro-batch (from its progress: ids added
    less ids forgotten; the row count itself is not tracked, see infra.spark)."""
    held, out = 0, []
    for p in progress:
        for op in p["stateOperators"]:
            if op["operatorName"].startswith("dedupe"):
                held += op["numRowsUpdated"] - op["numRowsRemoved"]
        out.append(held)
    return out


def sessions_closed(progress: list[dict]) -> list[int]:
    """Sessions each micro-batch closed (emitted and dropped from the session window state)."""
    return [sum(op["numRowsRemoved"] for op in p["stateOperators"] if op["operatorName"].startswith("session"))
            for p in progress]


def first_full(counts: list[int], level: float) -> int:
    """The first micro-batch after the one where ``counts`` reached ``level`` (len if never)."""
    return next((i + 1 for i, n in enumerate(counts) if n >= level), len(counts))


def full_state_rate(rows: list[int], ends: list[float], first: int) -> int | None:
    """Events/s over micro-batches ``first`` on: ``rows`` and sink ``ends`` per micro-batch."""
    if first < 1 or len(rows) - first < 3 or len(ends) != len(rows):  # too few full micro-batches to tell
        return None
    return round(sum(rows[first:]) / (ends[-1] - ends[first - 1]))

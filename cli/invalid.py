"""`parallax invalid tail`: what went to Kafka `events.invalid`, one readable line per record.

The records hold whatever senders posted, hostile strings included: every field is printed
through ``_safe`` (JSON escapes), so no control character or terminal escape sequence in a
record reaches the operator's terminal.
"""
from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import click

from cli.common import fail
from infra.clients import TopicReader
from infra.settings import Settings

# With a filter, look this far back for matching records (or n, if larger): the topic keeps
# 30 days, and reading all of it to find the last few of one site would take a while.
FILTER_SCAN = 10_000
EVENT_CHARS = 160


def _safe(text: str) -> str:
    """Printable: control characters (ANSI escapes included) and non-ASCII as JSON escapes."""
    return json.dumps(text)[1:-1]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def format_record(record: Any) -> str:
    """time, site, reason, errors, a truncated event."""
    if not isinstance(record, dict):
        return f"(not a record) {_clip(json.dumps(record), EVENT_CHARS)}"
    received = record.get("received_at")
    when = (datetime.fromtimestamp(received / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
            if isinstance(received, (int, float)) else "?")
    errors = "; ".join(_safe(str(e)) for e in record.get("errors") or [])
    event = _clip(json.dumps(record.get("event"), separators=(",", ":")), EVENT_CHARS)
    return (f"{when}  {_safe(str(record.get('site')))}  {_safe(str(record.get('reason')))}  "
            f"{_clip(errors, 300)}  {event}")


def matches(record: Any, site: str | None, reason: str | None) -> bool:
    return isinstance(record, dict) and site in (None, record.get("site")) and reason in (None, record.get("reason"))


def _decode(value: bytes) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value.decode("utf-8", "replace")


def _received_at(record: Any) -> int:
    received = record.get("received_at") if isinstance(record, dict) else None
    return received if isinstance(received, int) else 0


def tail(settings: Settings, echo: Callable[[str], None], *, site: str | None = None, reason: str | None = None,
         n: int = 20, follow: bool = False) -> int:
    """Print the last ``n`` records (that match), then, with ``follow``, new ones as they come.
    Returns how many were printed before following."""
    topic = TopicReader(settings, settings.kafka.topic_invalid, client_id="parallax-invalid-tail")
    try:
        filtered = site is not None or reason is not None
        # Every partition's last records, oldest first (newer ones too: follow goes on after them).
        recent = sorted((_decode(m.value) for m in topic.seek_back(max(n, FILTER_SCAN) if filtered else n)
                         .read_to_end()), key=_received_at)
        shown = deque((r for r in recent if matches(r, site, reason)), maxlen=n)
        for record in shown:
            echo(format_record(record))
        if follow:
            for message in topic.follow():
                record = _decode(message.value)
                if matches(record, site, reason):
                    echo(format_record(record))
        return len(shown)
    finally:
        topic.close()


@click.group()
def invalid() -> None:
    """What the collector rejected: Kafka `events.invalid`."""


@invalid.command("tail")
@click.option("--site", help="only this site's records")
@click.option("--reason", help="only this reason (e.g. schema_violation, clock_skew, origin_not_allowed)")
@click.option("-n", "count", default=20, show_default=True, help="how many of the last records to show")
@click.option("-f", "--follow", is_flag=True, help="then print new records as they arrive (Ctrl-C stops)")
@click.pass_obj
def invalid_tail(settings: Settings, site: str | None, reason: str | None, count: int, follow: bool) -> None:
    """Print the last records of `events.invalid`: time, site, reason, errors, the event (truncated)."""
    try:
        shown = tail(settings, click.echo, site=site, reason=reason, n=count, follow=follow)
    except KeyboardInterrupt:
        return
    except Exception as exc:
        fail(exc)
    if not shown:
        click.echo("no matching records in events.invalid", err=True)

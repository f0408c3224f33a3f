"""The ingestion pipeline as named steps: parse -> validate -> enrich -> produce.

Each step is pure (produce aside, which the HTTP edge does last). A rejected request or
event carries a typed reason and readable messages; rejected events are kept, with their
reason, in Kafka `events.invalid`. Enrichment (device, browser, OS, country) is worked
out once per request (``collector.enrichment.describe_client``) and copied to its events.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator

from collector.enrichment import BOT, Client, describe_client
from schemas import EVENT_SCHEMA_VERSION, EVENT_SCHEMA_VERSIONS, event_schema


class Reason(str, Enum):
    MALFORMED_BODY = "malformed_body"
    BATCH_TOO_LARGE = "batch_too_large"
    UNKNOWN_SITE = "unknown_site"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    SCHEMA = "schema_violation"


class RequestRejected(Exception):
    """The whole request is refused: nothing from it goes to `events`."""

    def __init__(self, reason: Reason, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason, self.message, self.status = reason, message, status


@dataclass
class Batch:
    site: str
    events: list[Any]


@dataclass
class Checked:
    valid: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[int, Any, list[str]]] = field(default_factory=list)


_validators = {v: Draft202012Validator(event_schema(v), format_checker=Draft202012Validator.FORMAT_CHECKER)
               for v in EVENT_SCHEMA_VERSIONS}


def _validator_for(event: Any) -> Draft202012Validator:
    """The schema the event names (an older tracker's), else the latest."""
    version = event.get("schema_version") if isinstance(event, dict) else None
    return _validators[version if version in EVENT_SCHEMA_VERSIONS else EVENT_SCHEMA_VERSION]


def parse(body: bytes, max_events: int) -> Batch:
    """JSON body (also sent as text/plain by sendBeacon) -> site and events."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestRejected(Reason.MALFORMED_BODY, f"body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestRejected(Reason.MALFORMED_BODY, "body must be a JSON object with 'site' and 'events'")
    site, events = payload.get("site"), payload.get("events")
    if not isinstance(site, str) or not site:
        raise RequestRejected(Reason.MALFORMED_BODY, "'site' must be a non-empty string")
    if not isinstance(events, list):
        raise RequestRejected(Reason.MALFORMED_BODY, "'events' must be a list of events")
    if len(events) > max_events:
        raise RequestRejected(Reason.BATCH_TOO_LARGE,
                              f"{len(events)} events in one request; at most {max_events}", status=413)
    return Batch(site=site, events=events)


def _path_of(error: Any) -> str:
    return "/" + "/".join(str(p) for p in error.absolute_path) if error.absolute_path else "/"


def validate(events: list[Any]) -> Checked:
    """Each event against the JSON Schema; errors name the offending field's path."""
    checked = Checked()
    for index, event in enumerate(events):
        errors = sorted(_validator_for(event).iter_errors(event), key=lambda e: list(e.absolute_path))
        if errors:
            checked.rejected.append((index, event, [f"{_path_of(e)}: {e.message}" for e in errors]))
        else:
            checked.valid.append((index, event))
    return checked


def visitor_id(salt: bytes, site: str, ip: str, user_agent: str) -> str:
    """Cookieless visitor id: the same person on the same site on the same day, and no
    way back to the IP (the salt rotates daily and is deleted after two days)."""
    digest = hashlib.sha256(salt + b"\x00" + site.encode() + b"\x00" + ip.encode() + b"\x00" + user_agent.encode())
    return digest.hexdigest()[:32]


def enrich(event: dict[str, Any], site: str, *, salt: bytes, ip: str, user_agent: str, received_at: int,
           client: Client | None = None) -> dict[str, Any]:
    """The enriched event written to Kafka `events` (see ``schemas.ENRICHED_EVENT_DDL``).
    The IP and the User-Agent go into the visitor id and ``client`` (the request's device,
    browser, OS and country; worked out from them, without a country, when not given)
    only: neither is part of the output."""
    client = client or describe_client(ip, user_agent, None)
    return {
        "event_id": event["event_id"].lower(),
        "site": site,
        "type": event["type"],
        "ts": event["ts"],
        "url": event["url"],
        "path": urlsplit(event["url"]).path or "/",
        "referrer": event.get("referrer") or None,
        "visitor_id": event.get("visitor_id") or visitor_id(salt, site, ip, user_agent),
        "received_at": received_at,
        "schema_version": event.get("schema_version", EVENT_SCHEMA_VERSION),
        "name": event.get("name"),
        "props": _string_props(event.get("props")),
        **client.fields(),
    }


# What this process enriched, by outcome (events stored; those of bots; those without a
# country), for the collector's metrics. Per process: each server worker keeps its own.
outcomes: Counter[str] = Counter()
_outcomes_lock = threading.Lock()


def count_enriched(client: Client, events: int) -> None:
    """Count a request's events once Kafka has them (a refused request is retried and
    would otherwise count twice)."""
    if events == 0:
        return
    with _outcomes_lock:
        outcomes["events"] += events
        if client.device == BOT:
            outcomes["bot_events"] += events
            outcomes["bot_requests"] += 1
        if client.country is None:
            outcomes["no_country_events"] += events


def _string_props(props: Any) -> dict[str, str] | None:
    """Property values as strings (JSON booleans as true/false), so views group them alike."""
    if not isinstance(props, dict) or not props:
        return None
    return {k: (json.dumps(v) if isinstance(v, bool) else str(v)) for k, v in props.items()}


def invalid_record(site: str | None, event: Any, reason: Reason, errors: list[str], received_at: int) -> dict[str, Any]:
    """What `events.invalid` keeps of a rejected event: the event as sent and why."""
    return {"site": site, "reason": reason.value, "errors": errors, "event": event, "received_at": received_at}


def kafka_key(site: str, visitor: str) -> bytes:
    """Site + visitor: one visitor's events stay in one partition, in order."""
    return f"{site}|{visitor}".encode()


def today_utc(received_at_ms: int) -> date:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(received_at_ms / 1000, tz=timezone.utc).date()

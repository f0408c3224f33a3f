"""The pure steps of ingestion: parse a body, then validate -> enrich -> filter each event.

``parse`` turns a request body into a site and its events; ``process`` runs the per-event
steps (``validate``, ``enrich``, ``filter``) and says what goes to Kafka `events` and what to
`events.invalid`, each rejection with a typed ``Reason`` and readable messages naming the
field. These steps are pure: ``collector.pipeline`` runs them among the request's steps
that need I/O (rate limits, the site registry, CORS, produce).

Rules for hostile strings (each event's url, referrer, name and property values):
- longer than the schema's maxLength -> rejected (``schema_violation``), the error says the
  length and the limit;
- a control character (Unicode category Cc: U+0000-U+001F, U+007F-U+009F) or an unpaired
  surrogate -> rejected (``control_characters``), the error names the field and the offset;
- ``url`` must be an absolute http(s) URL that parses (``invalid_url``): it is what reports
  link to, so ``javascript:`` and the like never get in;
- markup (``<script>``) and spreadsheet-formula prefixes (``=``, ``+``, ``-``, ``@``) are
  kept as sent: they are data. Readers must treat every string as text: the dashboard never
  renders one as HTML, and a CSV export prefixes such a cell with ``'``.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import fastjsonschema
from jsonschema import Draft202012Validator

from collector.enrichment import Client, describe_client
from collector.reasons import Problem, Reason, Rejection, RequestRejected
from schemas import EVENT_SCHEMA_VERSION, EVENT_SCHEMA_VERSIONS, SITE_ID, event_schema
from schemas.sources import source_fields


@dataclass
class Batch:
    site: str
    events: list[Any]


@dataclass(frozen=True)
class Context:
    """What every event of one request shares: who sent it, when, and the clock rules."""
    site: str
    received_at: int  # epoch ms, the collector's clock
    salt: bytes
    ip: str
    user_agent: str
    client: Client
    max_skew_ms: int
    late_after_ms: int
    # The site's registered domains: a referrer from them or their subdomains is Internal.
    domains: frozenset[str] = frozenset()


@dataclass
class Processed:
    accepted: list[dict[str, Any]] = field(default_factory=list)  # enriched, for `events`
    rejected: list[Rejection] = field(default_factory=list)  # for `events.invalid`
    late: int = 0  # accepted events older than the lateness threshold


# --- parse --------------------------------------------------------------------------------

def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which no JSON reader downstream takes back
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse(body: bytes, max_events: int) -> Batch:
    """JSON body (also sent as text/plain by sendBeacon) -> site and events."""
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise RequestRejected(Reason.MALFORMED_BODY, f"body is not valid UTF-8: {exc}") from None
    except ValueError as exc:  # json.JSONDecodeError included
        raise RequestRejected(Reason.MALFORMED_BODY, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestRejected(Reason.MALFORMED_BODY, "body is not valid JSON: nested too deeply") from None
    if not isinstance(payload, dict):
        raise RequestRejected(Reason.MALFORMED_BODY, "body must be a JSON object with 'site' and 'events'")
    site, events = payload.get("site"), payload.get("events")
    if not isinstance(site, str) or not site:
        raise RequestRejected(Reason.MALFORMED_BODY, "'site' must be a non-empty string")
    if not SITE_ID.fullmatch(site):
        raise RequestRejected(Reason.MALFORMED_BODY, "'site' is not a site id (1-63 lowercase letters, digits, "
                                                     "'.', '_' or '-', as `parallax site add` registers them)")
    if not isinstance(events, list):
        raise RequestRejected(Reason.MALFORMED_BODY, "'events' must be a list of events")
    if len(events) > max_events:
        raise RequestRejected(Reason.BATCH_TOO_LARGE,
                              f"{len(events)} events in one request; at most {max_events}", status=413)
    return Batch(site=site, events=events)


# --- validate -----------------------------------------------------------------------------

_validators = {v: Draft202012Validator(event_schema(v), format_checker=Draft202012Validator.FORMAT_CHECKER)
               for v in EVENT_SCHEMA_VERSIONS}


# The fast path's "uuid" format: the canonical form only (what the tracker sends), which
# jsonschema's check (uuid.UUID, hyphens in place) always accepts; anything else goes to it.
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _is_uuid(value: str) -> bool:
    return _CANONICAL_UUID.fullmatch(value) is not None


# The same schemas compiled to Python code: far cheaper than jsonschema on a valid
# event, the usual case. It only says "valid" or not; jsonschema has the last word on an event
# it doubts (its patterns end in \Z where jsonschema's $ also takes a final newline) and words
# the errors with their paths. tests/unit/test_collector_pipeline.py checks that whatever the fast
# check passes, jsonschema passes too.
_fast_validators = {v: fastjsonschema.compile(event_schema(v), formats={"uuid": _is_uuid})
                    for v in EVENT_SCHEMA_VERSIONS}
_MAX_MESSAGE = 200  # jsonschema quotes the offending value: a 2 MB string must not come back whole
# Unicode category Cc, and surrogates (json.loads pairs valid ones, so any left are unpaired).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_TEXT_FIELDS = ("url", "referrer", "name")


def _version_of(event: Any) -> int:
    """The schema the event names (an older tracker's), else the latest."""
    version = event.get("schema_version") if isinstance(event, dict) else None
    return version if version in EVENT_SCHEMA_VERSIONS else EVENT_SCHEMA_VERSION


def _path_of(error: Any) -> str:
    return "/" + "/".join(str(p) for p in error.absolute_path) if error.absolute_path else "/"


def _message(error: Any) -> str:
    path = _path_of(error)
    if error.validator == "maxLength" and isinstance(error.instance, str):
        return f"{path}: {len(error.instance)} characters, longer than the limit of {error.validator_value}"
    if error.validator == "maxProperties" and isinstance(error.instance, dict):
        return f"{path}: {len(error.instance)} properties, more than the limit of {error.validator_value}"
    text = error.message
    return f"{path}: {text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + '… (truncated)'}"


def _schema_errors(event: Any) -> list[str]:
    version = _version_of(event)
    try:
        _fast_validators[version](event)
        return []
    except Exception:
        pass
    errors = sorted(_validators[version].iter_errors(event), key=lambda e: [str(p) for p in e.absolute_path])
    return [_message(e) for e in errors]


def _text_values(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, value) of every string the collector stores from the event."""
    found = [(f"/{name}", event[name]) for name in _TEXT_FIELDS if isinstance(event.get(name), str)]
    props = event.get("props")
    if isinstance(props, dict):
        found += [(f"/props/{k}", v) for k, v in props.items() if isinstance(v, str)]
    return found


def _control_errors(event: dict[str, Any]) -> list[str]:
    errors = []
    for path, value in _text_values(event):
        m = _FORBIDDEN.search(value)
        if m:
            kind = "unpaired surrogate" if "\ud800" <= m.group() <= "\udfff" else "control character"
            errors.append(f"{path}: {kind} U+{ord(m.group()):04X} at offset {m.start()} is not allowed")
    return errors


def _url_errors(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port out of range
    except ValueError as exc:
        return [f"/url: cannot be parsed as a URL ({exc})"]
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ["/url: must be an absolute http or https URL (the page the event happened on)"]
    return []


def validate(event: Any) -> Problem | None:
    """The event against its JSON Schema, then the string rules (see the module's doc)."""
    errors = _schema_errors(event)
    if errors:
        return Problem(Reason.SCHEMA, errors)
    errors = _control_errors(event)
    if errors:
        return Problem(Reason.CONTROL_CHARACTERS, errors)
    errors = _url_errors(event["url"])
    if errors:
        return Problem(Reason.INVALID_URL, errors)
    return None


# --- enrich -------------------------------------------------------------------------------

def visitor_id(salt: bytes, site: str, ip: str, user_agent: str) -> str:
    """Cookieless visitor id: the same person on the same site on the same day, and no
    way back to the IP (the salt rotates daily and is deleted after two days)."""
    digest = hashlib.sha256(salt + b"\x00" + site.encode() + b"\x00" + ip.encode() + b"\x00" + user_agent.encode())
    return digest.hexdigest()[:32]


def enrich(event: dict[str, Any], site: str, *, salt: bytes, ip: str, user_agent: str, received_at: int,
           client: Client | None = None, cookieless_id: str | None = None,
           domains: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The enriched event written to Kafka `events` (see ``schemas.ENRICHED_EVENT_DDL``).
    The IP and the User-Agent go into the visitor id and ``client`` (the request's device,
    browser, OS and country; worked out from them, without a country, when not given)
    only: neither is part of the output. ``cookieless_id`` is the request's visitor id,
    when the caller already hashed it (it is the same for every event of a request)."""
    client = client or describe_client(ip, user_agent, None)
    referrer = event.get("referrer") or None
    return {
        "event_id": event["event_id"].lower(),
        "site": site,
        "type": event["type"],
        "ts": int(event["ts"]),  # JSON Schema's integer admits 1.7e12; Spark reads the field as LONG
        "url": event["url"],
        "path": urlsplit(event["url"]).path or "/",
        "referrer": referrer,
        "visitor_id": event.get("visitor_id") or cookieless_id or visitor_id(salt, site, ip, user_agent),
        "received_at": received_at,
        "schema_version": event.get("schema_version", EVENT_SCHEMA_VERSION),
        "name": event.get("name"),
        "props": _string_props(event.get("props")),
        **client.fields(),
        **source_fields(event["url"], referrer, domains),
    }


def _string_props(props: Any) -> dict[str, str] | None:
    """Property values as strings (JSON booleans as true/false), so views group them alike."""
    if not isinstance(props, dict) or not props:
        return None
    return {k: (json.dumps(v) if isinstance(v, bool) else str(v)) for k, v in props.items()}


# --- filter -------------------------------------------------------------------------------

def _duration(ms: int) -> str:
    seconds = ms / 1000
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} seconds"


def filter_event(event: dict[str, Any], ctx: Context) -> Problem | None:
    """Clock sanity: an event dated too far ahead of the collector's clock is rejected (a
    wrong device clock would put it in a bucket that has not happened yet)."""
    ahead = event["ts"] - ctx.received_at
    if ahead > ctx.max_skew_ms:
        return Problem(Reason.CLOCK_SKEW, [
            f"/ts: {event['ts']} is {_duration(ahead)} ahead of the collector's clock; at most "
            f"{_duration(ctx.max_skew_ms)} ahead is accepted (is the sender's clock right?)"])
    return None


def is_late(event: dict[str, Any], ctx: Context) -> bool:
    """Older than the lateness threshold when it arrived: accepted, and counted as late."""
    return ctx.received_at - event["ts"] > ctx.late_after_ms


# --- the per-event steps together ---------------------------------------------------------

def process(events: list[Any], ctx: Context) -> Processed:
    """validate -> enrich -> filter, event by event; the first step to object rejects it."""
    out = Processed()
    # One hash per request, not per event: every event of it shares salt, site, IP and agent.
    cookieless = visitor_id(ctx.salt, ctx.site, ctx.ip, ctx.user_agent)
    for index, event in enumerate(events):
        problem = validate(event)
        enriched = None
        if problem is None:
            enriched = enrich(event, ctx.site, salt=ctx.salt, ip=ctx.ip, user_agent=ctx.user_agent,
                              received_at=ctx.received_at, client=ctx.client, cookieless_id=cookieless,
                              domains=ctx.domains)
            problem = filter_event(enriched, ctx)
        if problem is not None:
            out.rejected.append(Rejection(index, event, problem.reason, problem.errors))
            continue
        out.accepted.append(enriched)
        out.late += is_late(enriched, ctx)
    return out


def invalid_record(site: str | None, event: Any, reason: Reason, errors: list[str], received_at: int) -> dict[str, Any]:
    """What `events.invalid` keeps of a rejected event: the event as sent and why."""
    return {"site": site, "reason": reason.value, "errors": errors, "event": event, "received_at": received_at}


def kafka_key(site: str, visitor: str) -> bytes:
    """Site + visitor: one visitor's events stay in one partition, in order."""
    return f"{site}|{visitor}".encode()


def today_utc(received_at_ms: int) -> date:
    return datetime.fromtimestamp(received_at_ms / 1000, tz=timezone.utc).date()

"""POST /api/collect as one pipeline of named steps, run in order on an ``Intake``.

| step | what it does | refuses with |
|---|---|---|
| rate limit per address | a request from the client's address | 429 ``rate_limited`` (``limit: ip``) |
| parse | the body -> a site and its events | 400 ``malformed_body``, 413 ``body_too_large``, ``batch_too_large`` |
| site | the site's registered domains | 400 ``unknown_site`` (events kept), 503 ``registry_unavailable`` |
| origin | a browser may post only from them | 403 ``origin_not_allowed`` (events kept) |
| rate limit per site | the request's events for the site | 429 ``rate_limited`` (``limit: site``) |
| visitor salt | today's salt of the cookieless visitor id | 503 ``registry_unavailable`` |
| validate, enrich, filter | each event (``collector.events``) | per event, in the answer's ``rejected`` |
| produce | accepted and rejected events to Kafka, acknowledged | 503 ``kafka_unavailable`` |

A step either fills in its part of the intake or raises ``RequestRejected``; the events
of a request refused with ``keep`` go to `events.invalid` with its reason and that error.
Nothing reaches Kafka `events` before the last step, and the collector answers 202 only
once Kafka has acknowledged every record.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from collector import events, metrics
from collector.cors import origin_allowed
from collector.enrichment import describe_client
from collector.events import Batch, Context, Processed
from collector.ratelimit import Exceeded
from collector.reasons import Reason, RequestRejected
from collector.resources import KafkaUnavailable, Resources

log = logging.getLogger(__name__)


@dataclass
class Intake:
    """One request as it moves through the steps: what came in, and what each step found."""
    read_body: Callable[[], bytes]  # read only by the parse step, after the address's rate limit
    ip: str  # the peer's address (X-Forwarded-For only through PARALLAX_TRUSTED_PROXIES proxies)
    origin: str | None
    user_agent: str
    received_at: int  # epoch ms, the collector's clock
    batch: Batch | None = None
    domains: frozenset[str] | None = None
    salt: bytes = b""
    context: Context | None = None
    processed: Processed | None = None


Step = Callable[[Intake, Resources], None]


def _too_many(exceeded: Exceeded) -> RequestRejected:
    return RequestRejected(Reason.RATE_LIMITED, exceeded.message, 429, retry_after=exceeded.retry_after,
                           details={"limit": exceeded.scope})


def _unavailable(what: str, exc: Exception) -> RequestRejected:
    log.error("%s unavailable: %s", what, exc)
    return RequestRejected(Reason.REGISTRY_UNAVAILABLE, "site registry (Cassandra) unavailable; retry later", 503)


def limit_address(intake: Intake, res: Resources) -> None:
    exceeded = res.limits.check_ip(intake.ip)
    if exceeded:
        raise _too_many(exceeded)


def body_too_large(limit: int) -> RequestRejected:
    return RequestRejected(Reason.BODY_TOO_LARGE, f"request body larger than {limit} bytes", 413)


def parse(intake: Intake, res: Resources) -> None:
    body, limit = intake.read_body(), res.settings.collector.max_body_bytes
    if len(body) > limit:
        raise body_too_large(limit)
    intake.batch = events.parse(body, res.settings.collector.max_events_per_request)


def find_site(intake: Intake, res: Resources) -> None:
    try:
        intake.domains = res.sites.domains(intake.batch.site)
    except Exception as exc:
        raise _unavailable("site registry", exc) from exc
    if intake.domains is None:
        raise RequestRejected(Reason.UNKNOWN_SITE,
                              f"unknown site {intake.batch.site!r}: register it with `parallax site add`",
                              keep="unknown site")


def check_origin(intake: Intake, res: Resources) -> None:
    if intake.origin is not None and not origin_allowed(intake.origin, intake.domains):
        error = (f"origin {intake.origin!r} may not send events for site {intake.batch.site!r}: its host is not one "
                 f"of the site's registered domains or their subdomains")
        raise RequestRejected(Reason.ORIGIN_NOT_ALLOWED, error, 403, keep=error)


def limit_site(intake: Intake, res: Resources) -> None:
    exceeded = res.limits.check_site(intake.batch.site, len(intake.batch.events))
    if exceeded:
        raise _too_many(exceeded)


def visitor_salt(intake: Intake, res: Resources) -> None:
    try:
        intake.salt = res.salts.for_day(events.today_utc(intake.received_at))
    except Exception as exc:
        raise _unavailable("visitor-id salt", exc) from exc


def process(intake: Intake, res: Resources) -> None:
    c = res.settings.collector
    intake.context = ctx = Context(
        site=intake.batch.site, received_at=intake.received_at, salt=intake.salt, ip=intake.ip,
        user_agent=intake.user_agent, client=describe_client(intake.ip, intake.user_agent, res.countries),
        max_skew_ms=int(c.max_clock_skew_s * 1000), late_after_ms=int(c.late_after_s * 1000),
        domains=intake.domains or frozenset())
    intake.processed = events.process(intake.batch.events, ctx)


def produce(intake: Intake, res: Resources) -> None:
    site, processed, topics = intake.batch.site, intake.processed, res.settings.kafka
    records = [(topics.topic_events, events.kafka_key(site, e["visitor_id"]), e) for e in processed.accepted]
    records += [(topics.topic_invalid, site.encode(),
                 events.invalid_record(site, r.event, r.reason, r.errors, intake.received_at))
                for r in processed.rejected]
    try:
        res.produce_all(records)
    except KafkaUnavailable as exc:
        res.outage.failed(exc)
        raise RequestRejected(Reason.KAFKA_UNAVAILABLE, "events could not be stored (Kafka unavailable); retry later",
                              503) from exc
    res.outage.acknowledged()
    metrics.count_processed(processed, intake.context.client)


STEPS: tuple[tuple[str, Step], ...] = (
    ("rate limit per address", limit_address),
    ("parse", parse),
    ("site", find_site),
    ("origin", check_origin),
    ("rate limit per site", limit_site),
    ("visitor salt", visitor_salt),
    ("validate, enrich, filter", process),
    ("produce", produce),
)


def keep_invalid(intake: Intake, res: Resources, refused: RequestRejected) -> int:
    """A refused request's events go to `events.invalid`, best effort: the request is
    refused either way, and the refusal is what matters here. Returns how many."""
    site, kept = intake.batch.site, intake.batch.events
    try:
        res.produce_all([(res.settings.kafka.topic_invalid, site.encode(),
                          events.invalid_record(site, e, refused.reason, [refused.keep], intake.received_at))
                         for e in kept])
    except KafkaUnavailable:
        pass
    return len(kept)


def run(intake: Intake, res: Resources) -> Processed:
    """Every step in order; a refusal is counted (and its events kept, if it says so) and
    raised to the caller."""
    try:
        for _name, step in STEPS:
            step(intake, res)
    except RequestRejected as refused:
        metrics.count_refused(refused.reason, keep_invalid(intake, res, refused) if refused.keep else 0)
        raise
    return intake.processed

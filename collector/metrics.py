"""The collector's Prometheus metrics, served at /metrics.

Under gunicorn every worker is a process of its own: ``collector.gunicorn_conf`` sets
PROMETHEUS_MULTIPROC_DIR before the workers start, so each writes its samples to files there
and /metrics, whichever worker answers, adds up all of them. Without it (``parallax collect
--debug``, tests in one process) the samples live in this process's default registry.

Outcomes are counted once Kafka has acknowledged them: a refused request is retried by its
sender and would otherwise count twice.
"""
from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from collector.enrichment import BOT, Client
from collector.events import Processed
from collector.reasons import REQUEST_REASONS, Reason

EVENTS_ACCEPTED = Counter("parallax_collector_events_accepted_total",
                          "Events acknowledged by Kafka `events`.")
EVENTS_REJECTED = Counter("parallax_collector_events_rejected_total",
                          "Events rejected, by reason (kept in `events.invalid`).", ["reason"])
REQUESTS_REFUSED = Counter("parallax_collector_requests_refused_total",
                           "Whole requests refused, by reason (4xx, 429 or 503).", ["reason"])
BOT_EVENTS = Counter("parallax_collector_bot_events_total",
                     "Accepted events whose client is a bot (device=bot): marked, not dropped.")
LATE_EVENTS = Counter("parallax_collector_late_events_total",
                      "Accepted events older than PARALLAX_LATE_AFTER_S when they arrived (likely "
                      "behind the speed layer's watermark: counted by the batch layer only).")
NO_COUNTRY_EVENTS = Counter("parallax_collector_no_country_events_total",
                            "Accepted events without a country (private address or no database).")
KAFKA_ACK_SECONDS = Histogram("parallax_collector_kafka_ack_seconds",
                              "From handing a request's records to the producer to Kafka acknowledging all of them.",
                              buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
REQUEST_SECONDS = Histogram("parallax_collector_request_seconds",
                            "POST /api/collect latency, by HTTP status.", ["status"],
                            buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))

# Every series from the start, at 0: a rate over a series that does not exist yet is no rate.
for _reason in Reason:
    (REQUESTS_REFUSED if _reason in REQUEST_REASONS else EVENTS_REJECTED).labels(_reason.value)
for _reason in (Reason.UNKNOWN_SITE, Reason.ORIGIN_NOT_ALLOWED):  # their events are kept too
    EVENTS_REJECTED.labels(_reason.value)


def count_processed(processed: Processed, client: Client) -> None:
    """A request's events, once Kafka acknowledged them."""
    accepted = len(processed.accepted)
    if accepted:
        EVENTS_ACCEPTED.inc(accepted)
        if client.device == BOT:
            BOT_EVENTS.inc(accepted)
        if client.country is None:
            NO_COUNTRY_EVENTS.inc(accepted)
    if processed.late:
        LATE_EVENTS.inc(processed.late)
    for rejection in processed.rejected:
        EVENTS_REJECTED.labels(rejection.reason.value).inc()


def count_refused(reason: Reason, events: int = 0) -> None:
    """A refused request; ``events`` of it went to `events.invalid` with the same reason."""
    REQUESTS_REFUSED.labels(reason.value).inc()
    if events:
        EVENTS_REJECTED.labels(reason.value).inc(events)


def exposition() -> tuple[bytes, str]:
    """The text format of every worker's samples (or this process's, outside gunicorn)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

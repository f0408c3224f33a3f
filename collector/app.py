"""The collector's HTTP edge: POST /api/collect runs the pipeline and answers only after
Kafka acknowledged every accepted event (acks=all, idempotent producer)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from collector import pipeline
from collector.pipeline import Reason, RequestRejected

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    pass


class Resources:
    """Kafka producer and Cassandra-backed registries, created lazily once per process
    (so that each server worker, after fork, gets its own)."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._producer: Any = None
        self._session: Any = None
        self.sites: Any = None
        self.salts: Any = None

    def registries(self) -> None:
        with self._lock:
            if self._session is None:
                from collector.registry import DailySalt, SiteRegistry
                from infra.clients import cassandra_session

                self._session = cassandra_session(self.settings, self.settings.keyspace)
                self.sites = SiteRegistry(self._session, self.settings.keyspace)
                self.salts = DailySalt(self._session, self.settings.keyspace)

    def producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                from infra.clients import json_bytes, kafka_producer

                try:
                    self._producer = kafka_producer(self.settings, value_serializer=json_bytes, max_block_ms=5000,
                                                    request_timeout_ms=5000,
                                                    delivery_timeout_ms=int(self.settings.kafka_ack_timeout_s * 1000))
                except Exception as exc:
                    raise KafkaUnavailable(str(exc)) from exc
            return self._producer

    def produce_all(self, records: list[tuple[str, bytes, Any]]) -> None:
        """Send and wait for every acknowledgement; any failure -> KafkaUnavailable."""
        producer = self.producer()
        try:
            futures = [producer.send(topic, key=key, value=value) for topic, key, value in records]
            producer.flush(timeout=self.settings.kafka_ack_timeout_s)
            for f in futures:
                f.get(timeout=self.settings.kafka_ack_timeout_s)
        except Exception as exc:
            raise KafkaUnavailable(str(exc)) from exc


def create_app(settings: Any = None, test_config: dict[str, Any] | None = None) -> Flask:
    if settings is None:
        from infra.settings import load_settings

        settings = load_settings()
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes)
    if test_config:
        app.config.update(test_config)
    res = Resources(settings)
    app.extensions["parallax.collector"] = res

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc: Exception):
        return jsonify(error=f"request body larger than {settings.max_body_bytes} bytes"), 413

    @app.post("/api/collect")
    def collect():
        received_at = int(time.time() * 1000)
        try:
            batch = pipeline.parse(request.get_data(cache=False), settings.max_events_per_request)
        except RequestRejected as exc:
            return jsonify(error=exc.message, reason=exc.reason.value), exc.status
        try:
            res.registries()
            site_known = res.sites.known(batch.site)
        except Exception as exc:
            log.error("site registry unavailable: %s", exc)
            return _unavailable("site registry (Cassandra) unavailable; retry later")
        records: list[tuple[str, bytes, Any]] = []
        if not site_known:
            records = [(settings.topic_invalid, batch.site.encode(),
                        pipeline.invalid_record(batch.site, e, Reason.UNKNOWN_SITE, ["unknown site"], received_at))
                       for e in batch.events]
            try:
                res.produce_all(records)
            except KafkaUnavailable:
                pass  # the request is refused either way; the refusal is what matters here
            return jsonify(error=f"unknown site {batch.site!r}: register it with `parallax site add`",
                           reason=Reason.UNKNOWN_SITE.value), 400

        checked = pipeline.validate(batch.events)
        ip = request.remote_addr or ""
        ua = request.headers.get("User-Agent", "")
        salt = res.salts.for_day(pipeline.today_utc(received_at))
        for _, event in checked.valid:
            enriched = pipeline.enrich(event, batch.site, salt=salt, ip=ip, user_agent=ua, received_at=received_at)
            records.append((settings.topic_events, pipeline.kafka_key(batch.site, enriched["visitor_id"]), enriched))
        for _, event, errors in checked.rejected:
            records.append((settings.topic_invalid, batch.site.encode(),
                            pipeline.invalid_record(batch.site, event, Reason.SCHEMA, errors, received_at)))
        try:
            res.produce_all(records)
        except KafkaUnavailable as exc:
            log.warning("Kafka did not acknowledge %d records: %s", len(records), exc)
            return _unavailable("events could not be stored (Kafka unavailable); retry later")
        body = {
            "accepted": len(checked.valid),
            "rejected": [{"index": i, "errors": errs} for i, _, errs in checked.rejected],
        }
        status = 202 if checked.valid or not checked.rejected else 400
        if status == 400:
            body["error"] = "no valid event in the request"
        return jsonify(body), status

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    return app


def _unavailable(message: str):
    response = jsonify(error=message)
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response

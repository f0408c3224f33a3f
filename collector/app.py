"""The collector's HTTP edge: POST /api/collect runs the pipeline and answers only after
Kafka acknowledged every accepted event (acks=all, idempotent producer); GET /js/tracker.js
serves the tracker. Browsers may post only from the site's registered domains (CORS)."""
from __future__ import annotations

import gzip
import hashlib
import ipaddress
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from collector import pipeline
from collector.enrichment import CountryDb, describe_client, warm_up
from collector.pipeline import Reason, RequestRejected

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    pass


class Resources:
    """Kafka producer and Cassandra-backed registries, created lazily once per process
    (so that each server worker, after fork, gets its own); the offline country database."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.countries = CountryDb(settings.geoip_db)
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
    # At start rather than in the first request; a missing database is reported now.
    res.countries.open()
    warm_up()
    app.extensions["parallax.collector"] = res

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc: Exception):
        return jsonify(error=f"request body larger than {settings.max_body_bytes} bytes"), 413

    def keep_invalid(batch: pipeline.Batch, reason: Reason, error: str, received_at: int) -> None:
        """A refused request's events go to `events.invalid`, best effort: the request is
        refused either way, and the refusal is what matters here."""
        try:
            res.produce_all([(settings.topic_invalid, batch.site.encode(),
                              pipeline.invalid_record(batch.site, e, reason, [error], received_at))
                             for e in batch.events])
        except KafkaUnavailable:
            pass

    # The body is read whatever its Content-Type: the tracker sends text/plain (no CORS
    # preflight, and what navigator.sendBeacon sends for a string), others application/json.
    @app.post("/api/collect", provide_automatic_options=False)
    def collect():
        received_at = int(time.time() * 1000)
        origin = request.headers.get("Origin")
        try:
            batch = pipeline.parse(request.get_data(cache=False), settings.max_events_per_request)
        except RequestRejected as exc:
            return jsonify(error=exc.message, reason=exc.reason.value), exc.status
        try:
            res.registries()
            domains = res.sites.domains(batch.site)
        except Exception as exc:
            log.error("site registry unavailable: %s", exc)
            return _unavailable("site registry (Cassandra) unavailable; retry later")
        if domains is None:
            keep_invalid(batch, Reason.UNKNOWN_SITE, "unknown site", received_at)
            return jsonify(error=f"unknown site {batch.site!r}: register it with `parallax site add`",
                           reason=Reason.UNKNOWN_SITE.value), 400
        if origin is not None and not origin_allowed(origin, domains):
            error = (f"origin {origin!r} may not send events for site {batch.site!r}: its host is not one of "
                     f"the site's registered domains or their subdomains")
            keep_invalid(batch, Reason.ORIGIN_NOT_ALLOWED, error, received_at)
            return jsonify(error=error, reason=Reason.ORIGIN_NOT_ALLOWED.value), 403
        g.cors_origin = origin  # judged: the browser may read this answer (see cors_headers)

        records: list[tuple[str, bytes, Any]] = []
        checked = pipeline.validate(batch.events)
        # The peer's address: X-Forwarded-For is not trusted (any client can send one).
        ip = request.remote_addr or ""
        ua = request.headers.get("User-Agent", "")
        salt = res.salts.for_day(pipeline.today_utc(received_at))
        client = describe_client(ip, ua, res.countries)  # once per request: its events share the client
        for _, event in checked.valid:
            enriched = pipeline.enrich(event, batch.site, salt=salt, ip=ip, user_agent=ua, received_at=received_at,
                                       client=client)
            records.append((settings.topic_events, pipeline.kafka_key(batch.site, enriched["visitor_id"]), enriched))
        for _, event, errors in checked.rejected:
            records.append((settings.topic_invalid, batch.site.encode(),
                            pipeline.invalid_record(batch.site, event, Reason.SCHEMA, errors, received_at)))
        try:
            res.produce_all(records)
        except KafkaUnavailable as exc:
            log.warning("Kafka did not acknowledge %d records: %s", len(records), exc)
            return _unavailable("events could not be stored (Kafka unavailable); retry later")
        pipeline.count_enriched(client, len(checked.valid))
        body = {
            "accepted": len(checked.valid),
            "rejected": [{"index": i, "errors": errs} for i, _, errs in checked.rejected],
        }
        status = 202 if checked.valid or not checked.rejected else 400
        if status == 400:
            body["error"] = "no valid event in the request"
        return jsonify(body), status

    @app.route("/api/collect", methods=["OPTIONS"])
    def collect_preflight():
        """A preflight carries no body, so the site is unknown here: allow the method and
        header to any origin, and judge the origin on the POST itself."""
        response = Response(status=204)
        origin = request.headers.get("Origin")
        if origin:
            response.headers.update(_PREFLIGHT)
            response.headers["Access-Control-Allow-Origin"] = origin
            response.vary.add("Origin")
        return response

    @app.after_request
    def cors_headers(response: Response) -> Response:
        if request.method == "POST" and request.path == "/api/collect" and "Origin" in request.headers:
            response.vary.add("Origin")
            if g.get("cors_origin"):
                response.headers["Access-Control-Allow-Origin"] = g.cors_origin
                response.headers["Access-Control-Expose-Headers"] = "Retry-After"  # the tracker honours it
        return response

    tracker = StaticAsset(STATIC_DIR / "tracker.js")

    @app.get("/js/tracker.js")
    def tracker_js():
        return tracker.response()

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    return app


STATIC_DIR = Path(__file__).with_name("static")
_PREFLIGHT = {"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type",
              "Access-Control-Max-Age": "7200"}  # Chromium caps the preflight cache at 2 hours
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_allowed(origin: str, domains: Iterable[str]) -> bool:
    """Whether a browser's Origin belongs to a site: its host is a registered domain or a
    subdomain of one (a domain registered with a port matches that port only). localhost
    and 127.0.0.1 get no favour: they pass only when the site registers them."""
    parts = urlsplit(origin)
    try:
        host, port = parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a malformed port
        return False
    if parts.scheme not in _DEFAULT_PORTS or not host:  # also the opaque origin "null"
        return False
    for domain in domains:
        name, _, want_port = domain.lower().partition(":")
        if want_port and int(want_port) != port:
            continue
        if host == name or (host.endswith("." + name) and not _is_ip(name)):
            return True
    return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class StaticAsset:
    """A small file served from memory, gzipped when the client accepts it, with an ETag
    so that a cached copy is revalidated with a 304."""

    def __init__(self, path: Path, max_age: int = 3600) -> None:
        self.raw = path.read_bytes()
        self.gzipped = gzip.compress(self.raw, compresslevel=9, mtime=0)
        self.etag = hashlib.sha256(self.raw).hexdigest()[:20]
        self.max_age = max_age  # the tag's URL is not versioned: a new tracker reaches visitors within this

    def response(self) -> Response:
        use_gzip = request.accept_encodings["gzip"] > 0
        response = Response(self.gzipped if use_gzip else self.raw, mimetype="text/javascript")
        if use_gzip:
            response.headers["Content-Encoding"] = "gzip"
        response.set_etag(self.etag + ("-gz" if use_gzip else ""))
        response.vary.add("Accept-Encoding")
        response.cache_control.public = True
        response.cache_control.max_age = self.max_age
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Access-Control-Allow-Origin"] = "*"  # lets a page use crossorigin + integrity
        return response.make_conditional(request)


def _unavailable(message: str):
    response = jsonify(error=message)
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response

"""The collector's HTTP edge. POST /api/collect runs the pipeline (collector.pipeline) behind
the gates that need I/O, in this order: the per-address rate limit, parse, the site registry,
CORS (browsers may post only from the site's registered domains), the per-site rate limit;
then validate -> enrich -> filter, and produce. It answers 202 only after Kafka acknowledged
every record (acks=all, idempotent producer), else 503 with Retry-After.
GET /js/tracker.js serves the tracker, /health says whether Kafka and Cassandra are
reachable, /metrics serves the Prometheus metrics of every worker."""
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

from collector import metrics, pipeline
from collector.enrichment import CountryDb, describe_client, warm_up
from collector.pipeline import Reason, RequestRejected
from collector.ratelimit import Exceeded, RateLimits

log = logging.getLogger(__name__)
COLLECT = "/api/collect"


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
        self._producer_failed_at = -_RETRY_PRODUCER_S
        self.outage = OutageLog()
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

    def retire(self, sink: Any) -> None:
        """Drop a producer that failed to deliver: the next request makes a fresh one (a
        producer's idempotence state after a broker restart is best not relied on; a new
        one starts clean). The old one is purged and closed in the background: the requests
        still waiting on it are answered 503 at once."""
        with self._lock:
            if self._producer is not sink:
                return  # another request retired it already
            self._producer = None
        sink.retire()

    def producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                # Creating one waits for Kafka (up to 5 s), holding the lock: while Kafka is
                # away, the requests queued behind a failed attempt fail at once instead of
                # each waiting in turn.
                if time.monotonic() - self._producer_failed_at < _RETRY_PRODUCER_S:
                    raise KafkaUnavailable("Kafka was unreachable moments ago")
                from collector.kafka_sink import connect

                try:
                    self._producer = connect(self.settings, timeout_s=5.0)
                except Exception as exc:
                    self._producer_failed_at = time.monotonic()
                    raise KafkaUnavailable(str(exc)) from exc
            return self._producer

    def produce_all(self, records: list[tuple[str, bytes, Any]]) -> None:
        """Send and wait for every acknowledgement; any failure -> KafkaUnavailable. A record
        whose acknowledgement did not come in time may still reach Kafka later: its sender
        retries with the same event_id, and both layers drop the repeat."""
        if not records:
            return
        from collector.kafka_sink import SinkClosed, to_json

        payloads = [(topic, key, to_json(value)) for topic, key, value in records]
        sink = self.producer()
        started = time.perf_counter()
        try:
            acks = sink.send(payloads)
        except BufferError as exc:  # librdkafka's queue is full: Kafka is slow, not the producer broken
            raise KafkaUnavailable(f"producer queue full: {exc}") from exc
        except SinkClosed as exc:  # retired meanwhile by another request
            raise KafkaUnavailable(str(exc)) from exc
        except Exception as exc:  # KafkaException: e.g. a fatal idempotence error
            self.retire(sink)
            raise KafkaUnavailable(str(exc)) from exc
        if not acks.done.wait(self.settings.kafka_ack_timeout_s + 1.0) or acks.error is not None:
            self.retire(sink)
            raise KafkaUnavailable(str(acks.error or "no acknowledgement in time"))
        metrics.KAFKA_ACK_SECONDS.observe(time.perf_counter() - started)

    def close(self) -> None:
        """Retire the producer (purged: call once nothing is waiting on it)."""
        with self._lock:
            sink, self._producer = self._producer, None
        if sink is not None:
            sink.retire()


_RETRY_PRODUCER_S = 2.0


class OutageLog:
    """Kafka refusing records, told to the operator once every 10 s with a count, and once
    when it acknowledges again; not once a request (kafka-python's own logs are silenced in
    collector.wsgi: it logs every failed connection)."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._lock = threading.Lock()
        self._refused = 0  # since the outage began
        self._since_log = 0
        self._logged_at = -every_s

    def failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._refused += 1
            self._since_log += 1
            if now - self._logged_at < self.every_s:
                return
            count, self._since_log, self._logged_at = self._since_log, 0, now
        log.warning("Kafka did not acknowledge: %d request(s) answered 503 (retry later) in the last %.0f s; "
                    "last error: %s", count, self.every_s, exc)

    def acknowledged(self) -> None:
        if not self._refused:  # the usual case: no lock
            return
        with self._lock:
            refused, self._refused, self._since_log, self._logged_at = self._refused, 0, 0, -self.every_s
        if refused:
            log.info("Kafka acknowledges again; %d request(s) were answered 503 while it could not", refused)


class Health:
    """Whether Kafka and Cassandra answer a TCP connection: cheap, and cached a few seconds
    so that a load balancer polling every worker costs nothing."""

    def __init__(self, settings: Any, ttl: float = 5.0) -> None:
        self.ttl = ttl
        kafka = [tuple(a.rsplit(":", 1)) for a in settings.kafka_bootstrap.split(",")]
        self.targets = {"kafka": [(h, int(p)) for h, p in kafka],
                        "cassandra": [(h, settings.cassandra_port) for h in settings.cassandra_hosts]}
        self._lock = threading.Lock()
        self._checked: tuple[float, dict[str, str]] | None = None

    def state(self) -> dict[str, str]:
        with self._lock:
            if self._checked is not None and time.monotonic() - self._checked[0] < self.ttl:
                return self._checked[1]
        from infra.proc import port_open

        found = {name: "ok" if any(port_open(h, p, timeout=1.0) for h, p in hosts) else "unreachable"
                 for name, hosts in self.targets.items()}
        with self._lock:
            self._checked = (time.monotonic(), found)
        return found


def create_app(settings: Any = None, test_config: dict[str, Any] | None = None) -> Flask:
    if settings is None:
        from infra.settings import load_settings

        settings = load_settings()
    app = Flask(__name__)
    # One byte over the limit: werkzeug stops a chunked body (no Content-Length) at the limit
    # without an error, so a body that reaches limit + 1 is how an oversized one is told apart.
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes + 1)
    if test_config:
        app.config.update(test_config)
    if settings.trusted_proxies:
        # Behind N proxies, the client is the Nth address from the right of X-Forwarded-For
        # (what a client sends itself sits further left and is ignored).
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    res = Resources(settings)
    limits = RateLimits(settings.rate_limit_ip, settings.rate_limit_site)
    health_check = Health(settings)
    log.info("collector: rate limits %s per address, %s per site (each worker counts its own); events over "
             "%.0f s ahead of this clock rejected, over %.0f s old counted late",
             settings.rate_limit_ip, settings.rate_limit_site, settings.max_clock_skew_s, settings.late_after_s)
    # At start rather than in the first request; a missing database is reported now.
    res.countries.open()
    warm_up()
    app.extensions["parallax.collector"] = res

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc: Exception | None = None):
        return _refuse(Reason.BODY_TOO_LARGE, f"request body larger than {settings.max_body_bytes} bytes", 413)

    def keep_invalid(batch: pipeline.Batch, reason: Reason, error: str, received_at: int) -> None:
        """A refused request's events go to `events.invalid`, best effort: the request is
        refused either way, and the refusal is what matters here."""
        try:
            res.produce_all([(settings.topic_invalid, batch.site.encode(),
                              pipeline.invalid_record(batch.site, e, reason, [error], received_at))
                             for e in batch.events])
        except KafkaUnavailable:
            pass

    def too_many(exceeded: Exceeded):
        # Readable by any origin (the origin may not be judged yet): the tracker must see
        # Retry-After to back off, and the answer tells nothing about the site.
        g.cors_origin = request.headers.get("Origin")
        response = _refuse(Reason.RATE_LIMITED, exceeded.message, 429, limit=exceeded.scope)
        response.headers["Retry-After"] = str(exceeded.retry_after)
        return response

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    # The body is read whatever its Content-Type: the tracker sends text/plain (no CORS
    # preflight, and what navigator.sendBeacon sends for a string), others application/json.
    @app.post(COLLECT, provide_automatic_options=False)
    def collect():
        received_at = int(time.time() * 1000)
        origin = request.headers.get("Origin")
        # The peer's address (X-Forwarded-For only through PARALLAX_TRUSTED_PROXIES proxies).
        ip = request.remote_addr or ""
        exceeded = limits.check_ip(ip)
        if exceeded:
            return too_many(exceeded)
        body = request.get_data(cache=False)
        if len(body) > settings.max_body_bytes:
            return too_large()
        try:
            batch = pipeline.parse(body, settings.max_events_per_request)  # step: parse
        except RequestRejected as exc:
            return _refuse(exc.reason, exc.message, exc.status)
        try:
            res.registries()
            domains = res.sites.domains(batch.site)
        except Exception as exc:
            log.error("site registry unavailable: %s", exc)
            return _refuse(Reason.REGISTRY_UNAVAILABLE, "site registry (Cassandra) unavailable; retry later", 503)
        if domains is None:
            keep_invalid(batch, Reason.UNKNOWN_SITE, "unknown site", received_at)
            return _refuse(Reason.UNKNOWN_SITE, f"unknown site {batch.site!r}: register it with `parallax site add`",
                           400, events=len(batch.events))
        if origin is not None and not origin_allowed(origin, domains):
            error = (f"origin {origin!r} may not send events for site {batch.site!r}: its host is not one of "
                     f"the site's registered domains or their subdomains")
            keep_invalid(batch, Reason.ORIGIN_NOT_ALLOWED, error, received_at)
            return _refuse(Reason.ORIGIN_NOT_ALLOWED, error, 403, events=len(batch.events))
        g.cors_origin = origin  # judged: the browser may read this answer (see cors_headers)
        exceeded = limits.check_site(batch.site, len(batch.events))
        if exceeded:
            return too_many(exceeded)

        ua = request.headers.get("User-Agent", "")
        try:
            salt = res.salts.for_day(pipeline.today_utc(received_at))
        except Exception as exc:
            log.error("visitor-id salt unavailable: %s", exc)
            return _refuse(Reason.REGISTRY_UNAVAILABLE, "site registry (Cassandra) unavailable; retry later", 503)
        ctx = pipeline.Context(site=batch.site, received_at=received_at, salt=salt, ip=ip, user_agent=ua,
                               client=describe_client(ip, ua, res.countries),  # once per request
                               max_skew_ms=int(settings.max_clock_skew_s * 1000),
                               late_after_ms=int(settings.late_after_s * 1000))
        processed = pipeline.process(batch.events, ctx)  # steps: validate -> enrich -> filter
        records = [(settings.topic_events, pipeline.kafka_key(batch.site, e["visitor_id"]), e)
                   for e in processed.accepted]
        records += [(settings.topic_invalid, batch.site.encode(),
                     pipeline.invalid_record(batch.site, r.event, r.reason, r.errors, received_at))
                    for r in processed.rejected]
        try:
            res.produce_all(records)  # step: produce
        except KafkaUnavailable as exc:
            res.outage.failed(exc)
            return _refuse(Reason.KAFKA_UNAVAILABLE, "events could not be stored (Kafka unavailable); retry later", 503)
        res.outage.acknowledged()
        metrics.count_processed(processed, ctx.client)
        answer: dict[str, Any] = {
            "accepted": len(processed.accepted),
            "rejected": [{"index": r.index, "reason": r.reason.value, "errors": r.errors} for r in processed.rejected],
        }
        status = 202 if processed.accepted or not processed.rejected else 400
        if status == 400:
            answer["error"] = "no valid event in the request"
        return jsonify(answer), status

    @app.route(COLLECT, methods=["OPTIONS"])
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
        if request.method == "POST" and request.path == COLLECT:
            elapsed = time.perf_counter() - g.get("started", time.perf_counter())
            metrics.REQUEST_SECONDS.labels(str(response.status_code)).observe(elapsed)
            if "Origin" in request.headers:
                response.vary.add("Origin")
                # The page may read every answer but a refused origin's: a judged origin's,
                # and refusals that came before the origin could be judged (a malformed or
                # too large body, an unknown site, 429, 503), so that the tracker drops a
                # hopeless batch or backs off instead of retrying blind.
                origin = g.get("cors_origin") or (request.headers["Origin"] if response.status_code != 403 else None)
                if origin:
                    response.headers["Access-Control-Allow-Origin"] = origin
                    response.headers["Access-Control-Expose-Headers"] = "Retry-After"  # the tracker honours it
        return response

    tracker = StaticAsset(STATIC_DIR / "tracker.js")

    @app.get("/js/tracker.js")
    def tracker_js():
        return tracker.response()

    @app.get("/health")
    def health():
        """200 when the collector can take events (Kafka and Cassandra reachable), else 503."""
        state = health_check.state()
        ok = all(v == "ok" for v in state.values())
        response = jsonify(status="ok" if ok else "unavailable", **state)
        if not ok:
            response.status_code = 503
            response.headers["Retry-After"] = "5"
        return response

    @app.get("/metrics")
    def prometheus_metrics():
        data, content_type = metrics.exposition()
        return Response(data, content_type=content_type)

    return app


def _refuse(reason: Reason, message: str, status: int, *, events: int = 0, **extra: Any) -> Response:
    """A refused request, counted; a 503 asks the sender to retry in a few seconds."""
    metrics.count_refused(reason, events)
    response = jsonify(error=message, reason=reason.value, **extra)
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


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


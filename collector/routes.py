"""The collector's HTTP routes: build an intake from the request, run the pipeline, answer.

POST /api/collect answers 202 only after Kafka acknowledged every record (acks=all,
idempotent producer), else 503 with Retry-After. GET /js/tracker.js serves the tracker,
/health says whether Kafka and Cassandra are reachable, /metrics serves the Prometheus
metrics of every worker.
"""
from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from collector import cors, metrics, pipeline
from collector.assets import TRACKER, StaticAsset
from collector.reasons import RequestRejected
from collector.resources import Resources

COLLECT = "/api/collect"
bp = Blueprint("collector", __name__)
_tracker = StaticAsset(TRACKER)


def resources() -> Resources:
    return current_app.extensions["parallax.collector"]


def refusal(refused: RequestRejected) -> Response:
    """The answer to a refused request: what was wrong and why, and when to retry."""
    response = jsonify(error=refused.message, reason=refused.reason.value, **refused.details)
    response.status_code = refused.status
    if refused.retry_after is not None:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


@bp.before_app_request
def start_clock() -> None:
    g.started = time.perf_counter()


# The body is read whatever its Content-Type: the tracker sends text/plain (no CORS
# preflight, and what navigator.sendBeacon sends for a string), others application/json.
@bp.post(COLLECT, provide_automatic_options=False)
def collect() -> Any:
    intake = pipeline.Intake(read_body=lambda: request.get_data(cache=False), ip=request.remote_addr or "",
                             origin=request.headers.get("Origin"), user_agent=request.headers.get("User-Agent", ""),
                             received_at=int(time.time() * 1000))
    try:
        processed = pipeline.run(intake, resources())
    except RequestRejected as refused:
        return refusal(refused)
    answer: dict[str, Any] = {
        "accepted": len(processed.accepted),
        "rejected": [{"index": r.index, "reason": r.reason.value, "errors": r.errors} for r in processed.rejected],
    }
    status = 202 if processed.accepted or not processed.rejected else 400
    if status == 400:
        answer["error"] = "no valid event in the request"
    return jsonify(answer), status


@bp.route(COLLECT, methods=["OPTIONS"])
def collect_preflight() -> Response:
    return cors.preflight(request)


@bp.after_app_request
def collect_answered(response: Response) -> Response:
    if request.method == "POST" and request.path == COLLECT:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.REQUEST_SECONDS.labels(str(response.status_code)).observe(elapsed)
        cors.allow_reading(request, response)
    return response


@bp.get("/js/tracker.js")
def tracker_js() -> Response:
    return _tracker.response(request)


@bp.get("/health")
def health() -> Response:
    """200 when the collector can take events (Kafka and Cassandra reachable), else 503."""
    state = current_app.extensions["parallax.health"].state()
    ok = all(v == "ok" for v in state.values())
    response = jsonify(status="ok" if ok else "unavailable", **state)
    if not ok:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    data, content_type = metrics.exposition()
    return Response(data, content_type=content_type)


def body_too_large(_exc: Exception | None = None) -> Response:
    """werkzeug stopped reading a body over the limit (``MAX_CONTENT_LENGTH``)."""
    refused = pipeline.body_too_large(resources().settings.collector.max_body_bytes)
    metrics.count_refused(refused.reason)
    return refusal(refused)


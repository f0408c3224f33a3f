"""How the serving layer answers what went wrong: JSON under /api/ (never an HTML page, never
a stack trace), with a message that says what was wrong; 503 with Retry-After when
Cassandra is away."""
from __future__ import annotations

import logging
import uuid
from typing import Any

from cassandra import OperationTimedOut, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from flask import Flask, Response, jsonify, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Cassandra away or overloaded (no replica answered, a timeout, too few replicas): the
# answer is 503, retried after this many seconds. A statement Cassandra refuses is a bug,
# answered 500.
RETRY_AFTER_S = 5
STORE_DOWN = (NoHostAvailable, OperationTimedOut, RequestExecutionException)


class ApiError(Exception):
    """A refusal with its status and message (and any fields to add to the answer)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    response = jsonify(error=message, **extra)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, **exc.extra)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
    if isinstance(exc, CSRFError):
        message = (f"CSRF check failed: {exc.description} Get a token from GET /api/v1/auth/csrf and send it in "
                   "the X-CSRFToken header (scripts: send an API token as Authorization: Bearer instead).")
    elif isinstance(exc, RateLimitExceeded):
        message = exc.description or "too many requests"
        retry = exc.get_headers()
        headers.update({k: v for k, v in retry if k.lower() == "retry-after"})
        if "Retry-After" not in headers and exc.limit is not None:
            headers["Retry-After"] = str(int(exc.limit.limit.get_expiry()))
    elif status == 404:
        message = f"no such path: {request.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.path}; allowed: {headers.get('Allow', '(none)')}"
    elif status == 413:
        message = f"the request body is too large (at most {request.max_content_length} bytes)"
    else:
        message = exc.description or exc.name
    return error_response(status, message, headers)


def store_down(exc: Exception) -> Response:
    log.warning("Cassandra is unavailable (%s: %s): answering 503", type(exc).__name__, exc)
    return error_response(503, "the view store (Cassandra) is unavailable; retry shortly",
                          {"Retry-After": str(RETRY_AFTER_S)})


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    incident = uuid.uuid4().hex[:12]
    log.exception("unexpected error answering %s %s (incident %s)", request.method, request.path, incident)
    return error_response(500, f"internal error (incident {incident}, in the serving layer's log)")


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    for exc in STORE_DOWN:
        app.register_error_handler(exc, store_down)
    app.register_error_handler(Exception, _unexpected)

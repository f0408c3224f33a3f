"""The serving layer's app factory: server-side sessions, the access check before every
route, CSRF, rate limits and security headers, the blueprints, the API contract, the
Socket.IO live pushes (``app.extensions["socketio"]``), and the store the routes read,
opened on first use."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from flask_socketio import SocketIO

from infra.settings import Settings
from serving_layer import errors, live, security
from serving_layer.access import READ_METHODS, Access, check_routes, enforce, forget_callers, requires
from serving_layer.api import API_PREFIX, api
from serving_layer.blueprints import admin, alerts, auth, diagnostics, exports, me, notifications, pages, reports, sites
from serving_layer.cache import AnswerCache
from serving_layer.freshness import FreshnessMonitor
from serving_layer.recent import Recent
from serving_layer.reports import ReportError
from serving_layer.sessions import CassandraSessionInterface
from serving_layer.stores import LazyStore

# Request bodies are small JSON documents (a login, a goal, preferences).
MAX_BODY_BYTES = 64 * 1024


def _report_error(exc: ReportError) -> Response:
    return errors.error_response(400, str(exc), **({"parameter": exc.parameter} if exc.parameter else {}))


# Routes whose changes alter who a caller is or what they may see.
ACCOUNT_BLUEPRINTS = ("auth", "me", "admin")


def _account_changes(response: Response) -> Response:
    """A change to accounts made here takes effect here at once (``access.callers``)."""
    if request.method not in READ_METHODS and request.blueprint in ACCOUNT_BLUEPRINTS and response.status_code < 400:
        forget_callers()
    return response


@requires(Access.PUBLIC, uses_store=False)
def openapi() -> Response:
    """The API's contract (OpenAPI 3.1), generated from the routes' declarations."""
    return jsonify(api.spec)


def create_app(settings: Settings, test_config: dict[str, Any] | None = None, *, live_feed: bool = True) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if test_config:
        app.config.update(test_config)
    store = LazyStore(settings)
    app.extensions["parallax.settings"] = settings
    app.extensions["parallax.store"] = store
    app.extensions["parallax.freshness"] = FreshnessMonitor(settings, lambda: store().diagnostics)
    app.extensions["parallax.answers"] = AnswerCache(settings.serving.answer_cache_entries)
    serving = settings.serving
    app.extensions["parallax.callers"] = Recent(serving.auth_cache_s)
    app.session_interface = CassandraSessionInterface(lambda: store().accounts, serving.session_lifetime_s,
                                                      serving.anonymous_session_s, app.extensions["parallax.callers"])
    security.init_app(app, settings)
    # The access check runs before CSRF: a caller who may not see a site learns nothing more.
    app.before_request(enforce)
    app.before_request(security.check_csrf)
    app.after_request(_account_changes)
    for blueprint in (auth.bp, me.bp, notifications.bp, sites.bp, alerts.bp, admin.bp, reports.bp, exports.bp,
                      diagnostics.bp, pages.bp):
        app.register_blueprint(blueprint)
    app.add_url_rule(f"{API_PREFIX}/openapi.json", view_func=openapi)
    api.app = app  # the document is generated from this app's routes (served by `openapi`)
    errors.register(app)
    app.register_error_handler(ReportError, _report_error)
    check_routes(app)
    # Websocket only: a connection stays on the process it reached, so several processes
    # need no sticky sessions; they share rooms through the Kafka message queue. Origins:
    # the serving layer's own, and those configured.
    queue = {"client_manager": live.message_queue(settings)} if live_feed else {}
    socketio = SocketIO(app, async_mode="threading", cors_allowed_origins=list(serving.allowed_origins) or None,
                        transports=["websocket"], **queue)
    live.register_handlers(socketio)
    if live_feed:
        socketio.start_background_task(live.consume_live_updates, socketio, settings, lambda: store().accounts)
        socketio.start_background_task(live.recheck_access, socketio, app)
        socketio.start_background_task(live.push_freshness, socketio, app)
    return app

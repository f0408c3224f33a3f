"""The serving layer's app factory: the report and diagnostics blueprints, Socket.IO live
pushes, and the store the routes read, opened on first use."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from flask_socketio import SocketIO

from infra.settings import Settings
from serving_layer import live
from serving_layer.blueprints import diagnostics, reports
from serving_layer.params import UnknownSite
from serving_layer.reports import ReportError
from serving_layer.stores import LazyStore

socketio = SocketIO()


def _bad_request(exc: ReportError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


def _not_found(exc: UnknownSite) -> tuple[Response, int]:
    return jsonify(error=f"unknown site {exc.args[0]!r}"), 404


def create_app(settings: Settings, test_config: dict[str, Any] | None = None, *, live_feed: bool = True) -> Flask:
    app = Flask(__name__)
    if test_config:
        app.config.update(test_config)
    app.extensions["parallax.settings"] = settings
    app.extensions["parallax.store"] = LazyStore(settings)
    app.register_blueprint(reports.bp)
    app.register_blueprint(diagnostics.bp)
    app.register_error_handler(ReportError, _bad_request)
    app.register_error_handler(UnknownSite, _not_found)
    socketio.init_app(app, async_mode="threading", cors_allowed_origins=[])
    live.register_handlers(socketio)
    if live_feed:
        socketio.start_background_task(live.consume_live_updates, socketio, settings)
    return app

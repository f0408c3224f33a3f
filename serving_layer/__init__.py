"""The serving layer: Flask app factory, REST reports and Socket.IO live pushes."""
from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask
from flask_socketio import SocketIO

socketio = SocketIO()
log = logging.getLogger(__name__)


def create_app(settings: Any = None, test_config: dict[str, Any] | None = None, *, live_feed: bool = True) -> Flask:
    if settings is None:
        from infra.settings import load_settings

        settings = load_settings()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False)
    if test_config:
        app.config.update(test_config)
    app.extensions["parallax.settings"] = settings
    app.extensions["parallax.viewstore"] = _lazy_viewstore(settings)

    from serving_layer import api, live

    app.register_blueprint(api.bp)
    socketio.init_app(app, async_mode="threading", cors_allowed_origins=[])
    live.register_handlers(socketio)
    if live_feed:
        socketio.start_background_task(live.consume_live_updates, socketio, settings.kafka_bootstrap, settings.topic_live)
    return app


def _lazy_viewstore(settings: Any):
    """One Cassandra session per process, opened on first use (not at import or fork)."""
    lock = threading.Lock()
    holder: dict[str, Any] = {}

    def get():
        with lock:
            if "store" not in holder:
                from infra.clients import cassandra_session
                from serving_layer.viewstore import CassandraViewStore

                holder["store"] = CassandraViewStore(cassandra_session(settings, settings.keyspace), settings.keyspace)
            return holder["store"]

    return get

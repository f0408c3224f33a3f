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
    app.extensions["parallax.viewstore"] = _LazyViewStore(settings)

    from serving_layer import api, live

    app.register_blueprint(api.bp)
    socketio.init_app(app, async_mode="threading", cors_allowed_origins=[])
    live.register_handlers(socketio)
    if live_feed:
        socketio.start_background_task(live.consume_live_updates, socketio, settings.kafka_bootstrap, settings.topic_live)
    return app


class _LazyViewStore:
    """One Cassandra session per process, opened on first use (not at import or fork)."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._store: Any = None

    def __call__(self):
        with self._lock:
            if self._store is None:
                from infra.clients import cassandra_session
                from serving_layer.viewstore import CassandraViewStore

                session = cassandra_session(self._settings, self._settings.keyspace)
                self._store = CassandraViewStore(session, self._settings.keyspace)
            return self._store

    def close(self) -> None:
        """Shut the session down (its driver threads would otherwise keep reconnecting)."""
        with self._lock:
            if self._store is not None:
                self._store.session.cluster.shutdown()
                self._store = None

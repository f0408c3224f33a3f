"""Live pushes: one background task consumes Kafka `metrics.live` and emits each update to
the Socket.IO room of its site. Clients join a room with the ``subscribe`` event."""
from __future__ import annotations

import json
import logging
from typing import Any

from flask_socketio import SocketIO, emit, join_room, leave_room
from kafka import KafkaConsumer

from infra.settings import Settings

log = logging.getLogger(__name__)


def room_of(site: str) -> str:
    return f"site:{site}"


def register_handlers(socketio: SocketIO) -> None:
    @socketio.on("subscribe")
    def subscribe(data: Any) -> None:
        site = (data or {}).get("site") if isinstance(data, dict) else None
        if not isinstance(site, str) or not site:
            emit("error", {"error": "subscribe needs {'site': '<site id>'}"})
            return
        join_room(room_of(site))
        emit("subscribed", {"site": site})

    @socketio.on("unsubscribe")
    def unsubscribe(data: Any) -> None:
        if isinstance(data, dict) and isinstance(data.get("site"), str):
            leave_room(room_of(data["site"]))


def consume_live_updates(socketio: SocketIO, settings: Settings) -> None:
    """Forward every `metrics.live` message to its site's room, for as long as the app runs."""
    topic = settings.kafka.topic_live
    while True:
        try:
            # No consumer group: every serving process sees every update, from now on.
            consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka.servers, auto_offset_reset="latest",
                                     enable_auto_commit=False, consumer_timeout_ms=1000, client_id="parallax-serving")
            log.info("forwarding %s to Socket.IO rooms", topic)
            while True:
                for message in consumer:
                    update = json.loads(message.value)
                    socketio.emit("metrics", update, to=room_of(update["site"]))
                socketio.sleep(0)
        except Exception as exc:  # broker away: keep serving reports, retry the feed
            log.warning("live feed from %s interrupted (%s); retrying in 5s", topic, exc)
            socketio.sleep(5)

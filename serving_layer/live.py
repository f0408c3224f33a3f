"""Live pushes over Socket.IO, to callers who may see the site.

A client authenticates when it connects: the session cookie of a logged-in browser, or an
API token as ``auth={"token": "plx_…"}``. It joins a site's room with ``subscribe``, which
checks its access to that site again (what it could see at connect is a snapshot). Every
``socket_recheck_s`` seconds each process checks its sockets' callers again, so a logout, a
revoked token, a removed user or membership ends a socket's access within seconds.

The serving processes share one Kafka consumer group on `metrics.live`: each update is read
by one of them and emitted to its site's room through the Socket.IO message queue (Kafka
`serving.sockets`), which delivers it to that room's clients on every process. Each
process pushes the freshness of the sites its own clients watch.
"""
from __future__ import annotations

import atexit
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import socketio
from flask import Flask, current_app, request
from flask_socketio import ConnectionRefusedError, SocketIO, disconnect, emit, join_room, leave_room

from infra.clients import group_consumer
from infra.settings import Settings
from serving_layer.access import Access, Principal, check, principal_of
from serving_layer.errors import STORE_DOWN, ApiError
from serving_layer.freshness import freshness
from serving_layer.sessions import COOKIE
from store.accounts import Accounts

log = logging.getLogger(__name__)

# Each Socket.IO event's access level, checked before its handler runs (and listed by the
# access-matrix test beside the REST routes).
EVENT_ACCESS = {"connect": Access.USER, "subscribe": Access.SITE_VIEWER, "unsubscribe": Access.USER}


class KafkaQueue(socketio.KafkaManager):
    """python-socketio's Kafka message queue, its messages sent as bytes (kafka-python 3
    refuses a str value)."""

    def _publish(self, data: Any) -> None:
        self.producer.send(self.channel, value=self.json.dumps(data).encode())
        self.producer.flush()


def message_queue(settings: Settings) -> KafkaQueue:
    """The queue every serving process emits through (Kafka `serving.sockets`)."""
    return KafkaQueue([f"kafka://{s}" for s in settings.kafka.servers], channel=settings.kafka.topic_sockets)


def room_of(site: str) -> str:
    return f"site:{site}"


def user_room(email: str) -> str:
    """Every socket of a user joins this room: their notifications are pushed to it."""
    return f"user:{email}"


@dataclass
class Credentials:
    """What a socket authenticated with, to check it again later."""
    token: str | None = None
    session_id: str | None = None

    def principal(self, accounts: Accounts) -> Principal | None:
        if self.token:
            try:
                return principal_of(f"Bearer {self.token}", "", None, accounts)
            except ApiError:
                return None
        if self.session_id:
            stored = accounts.load_session(self.session_id)
            if stored and stored.email:
                return principal_of(None, stored.email, self.session_id, accounts)
        return None


@dataclass
class SocketClient:
    credentials: Credentials
    principal: Principal
    sites: set[str] = field(default_factory=set)


class Clients:
    """This process's sockets and what each may see (thread-safe: handlers run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, SocketClient] = {}

    def add(self, sid: str, client: SocketClient) -> None:
        with self._lock:
            self._by_sid[sid] = client

    def get(self, sid: str) -> SocketClient | None:
        with self._lock:
            return self._by_sid.get(sid)

    def remove(self, sid: str) -> None:
        with self._lock:
            self._by_sid.pop(sid, None)

    def snapshot(self) -> list[tuple[str, SocketClient]]:
        with self._lock:
            return list(self._by_sid.items())


def _accounts() -> Accounts:
    return current_app.extensions["parallax.store"]().accounts


def _refuse(event: str, exc: ApiError) -> None:
    emit("error", {"event": event, "status": exc.status, "error": exc.message})


def register_handlers(socketio: SocketIO) -> None:
    clients = Clients()
    socketio.parallax_clients = clients  # type: ignore[attr-defined]

    @socketio.on("connect")
    def connect(auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) and isinstance(auth.get("token"), str) else None
        credentials = Credentials(token=token, session_id=None if token else request.cookies.get(COOKIE))
        try:
            accounts = _accounts()
            who = credentials.principal(accounts)
            check(EVENT_ACCESS["connect"], who, accounts)
        except ApiError as exc:
            raise ConnectionRefusedError(exc.message, {"status": exc.status, "error": exc.message}) from None
        except STORE_DOWN:
            message = "the store (Cassandra) is unavailable; retry shortly"
            raise ConnectionRefusedError(message, {"status": 503, "error": message}) from None
        assert who is not None
        clients.add(request.sid, SocketClient(credentials, who))  # type: ignore[attr-defined]
        join_room(user_room(who.user.email))

    @socketio.on("subscribe")
    def subscribe(data: Any = None) -> None:
        client = clients.get(request.sid)  # type: ignore[attr-defined]
        site = data.get("site") if isinstance(data, dict) else None
        if client is None:
            disconnect()
            return
        if not isinstance(site, str) or not site or len(site) > 63:
            emit("error", {"event": "subscribe", "status": 400, "error": "subscribe needs {'site': '<site id>'}"})
            return
        try:
            accounts = _accounts()
            who = client.credentials.principal(accounts)  # again: the connect-time caller is a snapshot
            check(EVENT_ACCESS["subscribe"], who, accounts, site=site)
            if current_app.extensions["parallax.store"]().site_zone(site) is None:
                raise ApiError(404, f"unknown site {site!r}")
        except ApiError as exc:
            _refuse("subscribe", exc)
            return
        client.sites.add(site)
        join_room(room_of(site))
        emit("subscribed", {"site": site})

    @socketio.on("unsubscribe")
    def unsubscribe(data: Any = None) -> None:
        client = clients.get(request.sid)  # type: ignore[attr-defined]
        if client is not None and isinstance(data, dict) and isinstance(data.get("site"), str):
            client.sites.discard(data["site"])
            leave_room(room_of(data["site"]))
            emit("unsubscribed", {"site": data["site"], "reason": "asked"})

    @socketio.on("disconnect")
    def gone(reason: Any = None) -> None:
        clients.remove(request.sid)  # type: ignore[attr-defined]


def recheck(socketio: SocketIO, accounts: Accounts) -> int:
    """Check every socket of this process again; end what its caller may no longer see.
    How many sockets lost access to something."""
    clients: Clients = socketio.parallax_clients  # type: ignore[attr-defined]
    ended = 0
    seen: dict[tuple[str | None, str | None], Principal | None] = {}
    for sid, client in clients.snapshot():
        key = (client.credentials.token, client.credentials.session_id)
        if key not in seen:
            seen[key] = client.credentials.principal(accounts)
        who = seen[key]
        if who is None:
            socketio.emit("access_ended", {"reason": "logged out, token revoked or account removed"}, to=sid)
            socketio.server.disconnect(sid)
            clients.remove(sid)
            ended += 1
            continue
        client.principal = who
        for site in sorted(client.sites):
            if who.role(accounts, site) is None:
                client.sites.discard(site)
                socketio.server.leave_room(sid, room_of(site))
                socketio.emit("unsubscribed", {"site": site, "reason": "access ended"}, to=sid)
                ended += 1
    return ended


def recheck_access(socketio: SocketIO, app: Flask) -> None:
    """Every ``socket_recheck_s`` seconds, for as long as the app runs."""
    interval = app.extensions["parallax.settings"].serving.socket_recheck_s
    while True:
        socketio.sleep(interval)
        try:
            ended = recheck(socketio, app.extensions["parallax.store"]().accounts)
            if ended:
                log.info("ended %d sockets' access after a logout, revocation or removal", ended)
        except STORE_DOWN as exc:
            log.warning("could not check sockets' access (Cassandra: %s); next try in %.0fs", exc, interval)
        except Exception:  # never let the check die: it is what ends revoked access
            log.exception("checking sockets' access failed; next try in %.0fs", interval)


LIVE_GROUP = "parallax-serving"


def push_notification(socketio: SocketIO, accounts: Accounts, n: dict[str, Any]) -> int:
    """A notification to the sockets of its recipients who may still see its site (admins
    only, for an alarm about the whole system); to how many users."""
    pushed = 0
    for email in sorted(n.get("recipients") or {}):
        user = accounts.user(email)
        if user is None:
            continue
        allowed = user.is_admin or (bool(n.get("site")) and accounts.role(email, n["site"]) is not None)
        if allowed:
            shown = {k: v for k, v in n.items() if k not in ("recipients", "webhook_url")}
            socketio.emit("notification", shown, to=user_room(email))
            pushed += 1
    return pushed


def consume_live_updates(socketio: SocketIO, settings: Settings, accounts: Any = None) -> None:
    """Forward every `metrics.live` message to its site's room, and every `notifications`
    message to its recipients' sockets, for as long as the app runs. ``accounts``: a
    callable giving the store's accounts."""
    topic = settings.kafka.topic_live
    while True:
        try:
            # One group for every serving process: an update is read once, and the message
            # queue takes it to the room's clients wherever they are connected. No offsets
            # are committed: a process that joins starts at the newest update (an old one
            # would show the dashboards numbers they have already moved past). Short
            # timeouts: the group notices a process gone (and reassigns its partitions)
            # within seconds, which is what a rebalance pauses the pushes for.
            consumer = group_consumer(settings, [topic, settings.kafka.topic_notifications], LIVE_GROUP,
                                      auto_offset_reset="latest", enable_auto_commit=False, consumer_timeout_ms=1000,
                                      session_timeout_ms=6000, heartbeat_interval_ms=2000,
                                      max_poll_interval_ms=10000, client_id="parallax-serving")
            atexit.register(consumer.close)  # leave the group at once when the process ends
            log.info("forwarding %s and %s to Socket.IO rooms (consumer group %s)", topic,
                     settings.kafka.topic_notifications, LIVE_GROUP)
            while True:
                for message in consumer:
                    try:
                        data = json.loads(message.value)
                        if message.topic == topic:
                            socketio.emit("metrics", data, to=room_of(data["site"]))
                        elif accounts is not None:
                            push_notification(socketio, accounts(), data)
                    except (ValueError, KeyError, TypeError, *STORE_DOWN) as exc:  # skipped, never fatal
                        log.warning("skipped %s offset %d (%s)", message.topic, message.offset, exc)
                socketio.sleep(0)
        except Exception as exc:  # broker away: keep serving reports, retry the feed
            log.warning("live feed from %s interrupted (%s); retrying in 5s", topic, exc)
            socketio.sleep(5)


def push_freshness(socketio: SocketIO, app: Flask) -> None:
    """Every ``freshness_push_s``, the freshness of each site this process's clients watch,
    to them only (every process pushes to its own)."""
    interval = app.extensions["parallax.settings"].serving.freshness_push_s
    clients: Clients = socketio.parallax_clients  # type: ignore[attr-defined]
    while True:
        socketio.sleep(interval)
        sites = {site for _, client in clients.snapshot() for site in client.sites}
        if not sites:
            continue
        try:
            store = app.extensions["parallax.store"]()
            speed = app.extensions["parallax.freshness"].speed()
            for site in sorted(sites):
                tz = store.site_zone(site)
                if tz is not None:
                    state = store.boundary_state(site)
                    socketio.emit("freshness", {"site": site, "freshness": freshness(state.boundary, speed,
                                                                                     ZoneInfo(tz), state.gaps)},
                                  to=room_of(site), ignore_queue=True)
        except STORE_DOWN as exc:
            log.warning("could not push freshness (Cassandra: %s)", exc)
        except Exception:  # never let the pushes die
            log.exception("pushing freshness failed")

"""Live pushes reach only the sockets allowed to see their site, and a socket's access ends
within seconds of a logout, a revoked token or a removed membership (a live serving
process, its `metrics.live` feed from the real Kafka)."""
from __future__ import annotations

import time
import uuid

import pytest

from store.accounts import Accounts, generate_password
from tests.helpers import Socket, login, publish_live, wait_for

# The serving process checks its sockets again every PARALLAX_SERVING_SOCKET_RECHECK_S (5 s):
# "within seconds" is within two checks, and the time it takes to read a few rows.
WITHIN_S = 15


def _user(accounts: Accounts, site: str, role: str = "viewer") -> tuple[str, str]:
    email, password = f"live-{uuid.uuid4().hex[:8]}@example.test", generate_password()
    accounts.add_user(email, password)
    accounts.grant(email, site, role)
    return email, password


@pytest.fixture
def sites(new_site):
    return new_site("live"), new_site("live")


def _until_received(stack, sockets: list[Socket], site_of: dict[Socket, str]) -> None:
    """Publish updates of each socket's site until every socket has one: the serving
    process's consumer starts reading where the topic ends when it joins its group."""
    def received() -> bool:
        for s in sockets:
            publish_live(stack, site_of[s], 1)
        time.sleep(0.5)
        return all(s.got("metrics") for s in sockets)

    wait_for("pushes on every socket", received, timeout=60)


def test_pushes_reach_only_the_sites_sockets(stack, serving_url, accounts, sites):
    a, b = sites
    on_a, on_b = _user(accounts, a), _user(accounts, b)
    socket_a = Socket(serving_url, cookie=login(serving_url, *on_a).cookies["parallax_session"])
    socket_b = Socket(serving_url, cookie=login(serving_url, *on_b).cookies["parallax_session"])
    try:
        socket_a.subscribe(a)
        socket_b.subscribe(b)
        socket_b.sio.emit("subscribe", {"site": a})  # refused, as an unknown site
        wait_for("the refusal", lambda: socket_b.got("error"), timeout=20)
        assert socket_b.got("error")[0] == {"event": "subscribe", "status": 404, "error": f"unknown site {a!r}"}
        _until_received(stack, [socket_a, socket_b], {socket_a: a, socket_b: b})
        publish_live(stack, a, 41)
        publish_live(stack, b, 42)
        wait_for("the marked pushes", lambda: 41 in [m["batch_id"] for m in socket_a.got("metrics")]
                 and 42 in [m["batch_id"] for m in socket_b.got("metrics")], timeout=30)
        time.sleep(1)
        assert {m["site"] for m in socket_a.got("metrics")} == {a}
        assert {m["site"] for m in socket_b.got("metrics")} == {b}
    finally:
        socket_a.close()
        socket_b.close()


def test_logout_ends_the_sockets_access(serving_url, accounts, sites):
    browser = login(serving_url, *_user(accounts, sites[0]))
    socket = Socket(serving_url, cookie=browser.cookies["parallax_session"])
    try:
        socket.subscribe(sites[0])
        assert browser.post(f"{serving_url}/api/v1/auth/logout", timeout=30).status_code == 204
        wait_for("the socket's end", lambda: socket.got("access_ended") and not socket.sio.connected,
                 timeout=WITHIN_S, interval=0.2)
    finally:
        socket.close()


def test_a_revoked_token_ends_the_sockets_access(serving_url, accounts, sites):
    email, password = _user(accounts, sites[0])
    browser = login(serving_url, email, password)
    made = browser.post(f"{serving_url}/api/v1/me/tokens", json={"name": "dash"}, timeout=30).json()
    socket = Socket(serving_url, token=made["secret"])
    try:
        socket.subscribe(sites[0])
        assert browser.delete(f"{serving_url}/api/v1/me/tokens/{made['token']['id']}", timeout=30).status_code == 204
        wait_for("the socket's end", lambda: socket.got("access_ended") and not socket.sio.connected,
                 timeout=WITHIN_S, interval=0.2)
    finally:
        socket.close()


def test_a_removed_membership_leaves_the_room(stack, serving_url, accounts, sites, api):
    a, b = sites
    email, password = _user(accounts, a)
    accounts.grant(email, b, "viewer")
    socket = Socket(serving_url, cookie=login(serving_url, email, password).cookies["parallax_session"])
    try:
        socket.subscribe(a)
        socket.subscribe(b)
        assert api.delete(f"{serving_url}/api/v1/sites/{a}/members/{email}", timeout=30).status_code == 204
        wait_for("leaving a's room", lambda: socket.got("unsubscribed"), timeout=WITHIN_S, interval=0.2)
        assert socket.got("unsubscribed") == [{"site": a, "reason": "access ended"}]
        _until_received(stack, [socket], {socket: b})
        publish_live(stack, a, 7)
        publish_live(stack, b, 8)
        wait_for("b's marked push", lambda: 8 in [m["batch_id"] for m in socket.got("metrics")], timeout=30)
        time.sleep(1)
        assert {m["site"] for m in socket.got("metrics")} == {b}  # still connected, a no more
        assert socket.sio.connected
    finally:
        socket.close()

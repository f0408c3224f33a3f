"""Two serving processes share their Socket.IO rooms through the Kafka message queue: a
client on each receives the same pushes, whichever process read the update from
`metrics.live`, and each process checks access for its own clients."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from infra.proc import CliProcess, free_port
from store.accounts import Accounts, generate_password
from tests.helpers import Socket, login, publish_live, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def two_processes(stack, log_dir) -> Iterator[list[str]]:
    urls, processes = [], []
    for i in (1, 2):
        port = free_port()
        processes.append(CliProcess(f"serving-{i}", ["serve", "--port", str(port)], log_dir / f"serving-{i}.log",
                                    env={"PARALLAX_SERVING_LOGIN_LIMIT_IP": "1000/minute"}).start())
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_for(f"{url} health", lambda url=url: requests.get(f"{url}/api/v1/health", timeout=2).ok, timeout=60)
        yield urls
    finally:
        for p in processes:
            p.stop()


def _member(accounts: Accounts, site: str) -> tuple[str, str]:
    email, password = f"two-{uuid.uuid4().hex[:8]}@example.test", generate_password()
    accounts.add_user(email, password)
    accounts.grant(email, site, "viewer")
    return email, password


def test_both_processes_push_the_same_updates(stack, two_processes, accounts, new_site):
    site, other = new_site("two"), new_site("two")
    first, second = two_processes
    alice, bob, carol = _member(accounts, site), _member(accounts, site), _member(accounts, other)
    on_first = Socket(first, cookie=login(first, *alice).cookies["parallax_session"])
    on_second = Socket(second, cookie=login(second, *bob).cookies["parallax_session"])
    outsider = Socket(second, cookie=login(second, *carol).cookies["parallax_session"])
    try:
        on_first.subscribe(site)
        on_second.subscribe(site)
        outsider.subscribe(other)
        outsider.sio.emit("subscribe", {"site": site})
        wait_for("the outsider's refusal", lambda: outsider.got("error"), timeout=20)
        assert outsider.got("error")[0]["status"] == 404

        def both_receive() -> bool:  # each process joins the consumer group as it starts
            publish_live(stack, site, 1)
            time.sleep(0.5)
            return bool(on_first.got("metrics") and on_second.got("metrics"))

        wait_for("pushes on both processes", both_receive, timeout=90)
        for marker in range(100, 110):
            publish_live(stack, site, marker)
        markers = set(range(100, 110))

        def marks(socket: Socket) -> set[int]:
            return {m["batch_id"] for m in socket.got("metrics")} & markers

        wait_for("every marked update on both", lambda: marks(on_first) == marks(on_second) == markers, timeout=30)
        # Each update once per client, though two processes share the work.
        for socket in (on_first, on_second):
            got = [m["batch_id"] for m in socket.got("metrics") if m["batch_id"] in markers]
            assert sorted(got) == sorted(markers)
        assert not outsider.got("metrics")

        # Access ends on the process that holds the socket: bob's membership goes.
        accounts.revoke(bob[0], site)
        wait_for("bob leaves the room", lambda: on_second.got("unsubscribed"), timeout=15, interval=0.2)
        assert on_second.got("unsubscribed") == [{"site": site, "reason": "access ended"}]
        seen = len(on_second.got("metrics"))
        publish_live(stack, site, 200)
        wait_for("alice's push", lambda: 200 in [m["batch_id"] for m in on_first.got("metrics")], timeout=30)
        time.sleep(1)
        assert len(on_second.got("metrics")) == seen
    finally:
        for s in (on_first, on_second, outsider):
            s.close()

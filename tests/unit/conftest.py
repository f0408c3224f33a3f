"""The unit tests need no stack: a test here that asks for one fails at collection, so that
`pytest tests/unit` stays a matter of seconds."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

STACK_FIXTURES = {"settings", "stack", "cassandra", "registry", "accounts", "admin_token", "api", "serving_app",
                  "spark", "speed_layer", "collector_url", "serving_url", "new_site", "events_tail", "invalid_tail",
                  "airflow_db", "chromium", "speed_process", "context"}
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        wanted = STACK_FIXTURES & set(getattr(item, "fixturenames", ()))
        if HERE in item.path.parents and wanted:
            raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {', '.join(sorted(wanted))}: "
                                    "move it to tests/stack")


@pytest.fixture()
def store_away(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings whose Cassandra is away (a port nothing listens on), state under tmp_path."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("PARALLAX_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PARALLAX_CASSANDRA_PORT", str(closed))

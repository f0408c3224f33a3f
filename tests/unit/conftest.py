"""The unit tests need no stack: a test here that asks for one fails at collection, so that
`pytest tests/unit` stays a matter of seconds."""
from __future__ import annotations

from pathlib import Path

import pytest

STACK_FIXTURES = {"settings", "stack", "cassandra", "registry", "accounts", "admin_token", "api", "serving_app",
                  "spark", "speed_layer", "collector_url", "serving_url", "new_site", "events_tail", "invalid_tail",
                  "airflow_db", "chromium"}
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        wanted = STACK_FIXTURES & set(getattr(item, "fixturenames", ()))
        if HERE in item.path.parents and wanted:
            raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {', '.join(sorted(wanted))}: "
                                    "move it to tests/stack")

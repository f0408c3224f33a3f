"""The API keeps the contract it publishes: schemathesis sends every operation of the
document (GET /api/v1/openapi.json) requests generated from it, valid and not, to the live
serving process, as an admin's token: no answer is a 5xx, and every answer (status,
content type, body) is one the document declares.

The document is generated at collection (pytest parametrizes from it then, before the
serving process runs), by the same code as the live one, which a test compares."""
from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from infra.settings import load_settings
from serving_layer.app import create_app

pytestmark = pytest.mark.stack




def _document() -> dict:
    app = create_app(load_settings(), live_feed=False)
    return app.test_client().get("/api/v1/openapi.json").get_json()


DOCUMENT = _document()
# A request schemathesis makes invalid may be refused for its size before the app sees it:
# 414 (gunicorn's request-line limit) and 413 are refusals too.
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": [
    "400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428", "429", "5xx"]}}})
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
# The session's admin token exists once its fixture ran; schemathesis builds some cases at
# collection, before: they carry a placeholder, replaced by the token as each is sent.
PLACEHOLDER = "plx_placeholder"
TOKEN: dict[str, str] = {}


@schema.auth()
class AdminToken:
    """Every request as an admin's API token (schemathesis also tries each without it,
    and with a wrong one, and expects a refusal)."""

    def get(self, case, context):
        return PLACEHOLDER

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.hook("before_call")
def _the_real_token(context, case, kwargs):
    if case.headers and case.headers.get("Authorization") == f"Bearer {PLACEHOLDER}":
        case.headers["Authorization"] = f"Bearer {TOKEN['admin']}"


def test_the_document_is_served_and_lists_every_route(serving_url):
    doc = requests.get(f"{serving_url}/api/v1/openapi.json", timeout=30).json()
    assert doc == DOCUMENT
    assert doc["openapi"].startswith("3.1") and doc["info"]["title"] == "Parallax"
    assert {"/api/v1/sites/{site}/report", "/api/v1/auth/login", "/api/v1/me/tokens"} <= set(doc["paths"])
    report = doc["paths"]["/api/v1/sites/{site}/report"]["get"]
    assert {p["name"] for p in report["parameters"]} >= {"site", "from", "to", "metrics", "granularity", "filters",
                                                         "compare"}
    assert {"200", "400", "401", "403", "404", "503"} <= set(report["responses"])


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_contract(case, admin_token, serving_url):
    TOKEN["admin"] = admin_token
    # A request the document allows may still be refused with a 400 it declares: a range
    # whose end precedes its start, an unknown metric, a domain that is no host name. What
    # is checked is that every answer is declared and none is a server error.
    case.call_and_validate(base_url=serving_url, excluded_checks=[positive_data_acceptance])

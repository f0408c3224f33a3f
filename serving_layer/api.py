"""The API's contract, declared once per route: its path and method, access level, query or
body model, and answer model. ``endpoint`` turns that one declaration into the Flask route,
its access check, its request and response validation (spectree, on pydantic models) and
its entry in the OpenAPI document served at ``GET /api/v1/openapi.json``; the error
answers a route can give follow from its access level and inputs.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import Blueprint, Response, g, request
from pydantic import BaseModel, ConfigDict
from spectree import Response as Answers
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.plugins.flask_plugin import FlaskPlugin

from serving_layer.access import Access, requires
from serving_layer.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])
API_PREFIX = "/api/v1"


class ErrorBody(BaseModel):
    """Every refusal: what was wrong, in words; some add fields (the parameter, the limit)."""
    model_config = ConfigDict(extra="allow")
    error: str


class Query(BaseModel):
    """Query parameters: an unknown one is refused, so a typo does not pass unnoticed."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Body(BaseModel):
    """A JSON body: an unknown field is refused."""
    model_config = ConfigDict(extra="forbid")


def _validation_error(req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any) -> None:
    """A refused request names each bad parameter or field and says what it must be."""
    if error is None or resp is None:
        return
    problems = []
    for e in adapter.validation_errors(error):
        name = ".".join(str(part) for part in e.get("loc", ()) if part != "__root__") or "(request)"
        problems.append({"parameter": name, "problem": e.get("msg", "invalid")})
    summary = "; ".join(f"'{p['parameter']}': {p['problem']}" for p in problems)
    resp.set_data(json.dumps({"error": f"bad request: {summary}", "problems": problems}))
    resp.mimetype = "application/json"


class _Plugin(FlaskPlugin):
    """Spectree's Flask plugin, but an answer validated when it was computed (and kept,
    ``serving_layer.cache``) is not validated again each time it is sent."""

    def validate_response(self, resp: Any, resp_model: Any, skip_validation: bool, force_resp_serialize: bool
                          ) -> Any:
        return super().validate_response(resp, resp_model, skip_validation or g.get("prevalidated", False),
                                         force_resp_serialize)


def prevalidated() -> None:
    """This request's answer was validated against its model when it was computed."""
    g.prevalidated = True


api = SpecTree(
    "flask",
    backend=_Plugin,
    mode="strict",  # the document lists exactly the declared routes
    title="Parallax",
    version="1",
    description="Reports, accounts and sites of a Parallax installation. A browser logs in (cookie "
                "`parallax_session`, and an `X-CSRFToken` header on every change); a script sends an API "
                "token as `Authorization: Bearer plx_…`.",
    path="api/v1/openapi",  # spectree leaves routes under it out of the document; nothing else is there
    validation_error_status=400,
    before=_validation_error,
    naming_strategy=lambda model: model.__name__,  # component names as the models are named
    nested_naming_strategy=lambda parent, child: child,
    security_schemes=[
        SecurityScheme(name="session", data=SecuritySchemeData(type="apiKey", field_in="cookie",
                                                               name="parallax_session")),
        SecurityScheme(name="token", data=SecuritySchemeData(type="http", scheme="bearer")),
    ],
)


def _answers(level: Access, ok_status: int, ok: type[BaseModel] | None, *, inputs: bool, path_params: bool,
             body: bool, extra: Sequence[int], uses_store: bool) -> Answers:
    codes: dict[str, Any] = {f"HTTP_{ok_status}": ok}
    refusals = set(extra)
    if inputs:
        refusals.add(400)
    if level is not Access.PUBLIC:
        refusals |= {401, 403}
    if path_params:
        refusals.add(404)
    if body:
        refusals |= {413, 415}
    if uses_store:
        refusals.add(503)
    codes.update({f"HTTP_{code}": ErrorBody for code in sorted(refusals)})
    if inputs or path_params:
        # A request line longer than gunicorn takes (8190 bytes) is refused by gunicorn itself,
        # before the app, with its own short page: documented, without a body to rely on.
        codes["HTTP_414"] = None
    return Answers(**codes)


def endpoint(bp: Blueprint, method: str, rule: str, level: Access, *, query: type[Query] | None = None,
             body: type[Body] | None = None, ok: type[BaseModel] | None = None, ok_status: int = 200,
             errors: Sequence[int] = (), tags: Sequence[str] = (), setup_ok: bool = False,
             uses_store: bool = True) -> Callable[[F], F]:
    """Declare and register a route of ``bp``: see the module's docstring."""

    def register(fn: F) -> F:
        if body is not None:
            fn = _json_body(fn)
        marked = requires(level, setup_ok=setup_ok, uses_store=uses_store)(fn)
        answers = _answers(level, ok_status, ok, inputs=query is not None or body is not None,
                           path_params="<" in rule, body=body is not None, extra=errors, uses_store=uses_store)
        security = [] if level is Access.PUBLIC else (
            [{"session": []}] if level is Access.SESSION else [{"session": []}, {"token": []}])
        validated = api.validate(query=query, json=body, resp=answers, tags=list(tags), security=security)(marked)
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=validated, methods=[method])
        return validated  # type: ignore[return-value]

    return register


def _json_body(fn: F) -> F:
    """A route that takes a body takes a JSON object, and says so to anything else."""

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if request.mimetype != "application/json":
            raise ApiError(415, f"send the body as JSON (Content-Type: application/json), not {request.mimetype!r}")
        if not isinstance(request.get_json(silent=True), dict):
            raise ApiError(400, "the body must be a JSON object")
        return fn(*args, **kwargs)

    return checked  # type: ignore[return-value]


def no_content() -> Response:
    return Response(status=204)

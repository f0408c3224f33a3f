"""The dashboard's pages: one HTML shell for every page of the single-page app, and its
built assets. The shell holds no data (each page reads the API, behind the session login),
so it is public and the same for every path: a site one may not see is told apart from one
that does not exist by nothing here either."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory

from serving_layer.access import Access, requires
from serving_layer.errors import ApiError

bp = Blueprint("pages", __name__)

# The paths of the app's pages (its router, src/router.js, knows the same ones).
PAGES = ("/", "/login", "/sites/<site>", "/sites/<site>/<path:rest>", "/notifications", "/settings",
         "/settings/<path:rest>", "/admin", "/admin/<path:rest>")
ASSETS_MAX_AGE_S = 365 * 86_400  # their names change with their content


def _dist() -> Path:
    return current_app.extensions["parallax.settings"].serving.dashboard_dir


@requires(Access.PUBLIC, uses_store=False)
def shell(**_: str) -> Response:
    """The app's HTML shell (built with its assets' names in it)."""
    index = _dist() / "index.html"
    if not index.is_file():
        raise ApiError(503, f"the dashboard is not built ({index} is missing): run `make setup`, or `npm ci && "
                            "npm run build` in serving_layer/dashboard")
    response = send_from_directory(index.parent, index.name, max_age=0)
    response.headers["Cache-Control"] = "no-cache"  # always the shell of the current build
    return response


@requires(Access.PUBLIC, uses_store=False)
def asset(name: str) -> Response:
    """A built asset, cached for a year: a new build names its files anew."""
    return send_from_directory(_dist() / "assets", name, max_age=ASSETS_MAX_AGE_S)


for i, rule in enumerate(PAGES):
    bp.add_url_rule(rule, endpoint="shell" if i == 0 else f"shell_{i}", view_func=shell, methods=["GET"])
bp.add_url_rule("/assets/<path:name>", view_func=asset, methods=["GET"])

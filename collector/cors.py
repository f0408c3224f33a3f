"""Which browser pages may post events for a site (their Origin among its registered
domains), and the CORS headers that say so."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Request, Response

# Chromium caps the preflight cache at 2 hours.
PREFLIGHT = {"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type",
             "Access-Control-Max-Age": "7200"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_allowed(origin: str, domains: Iterable[str]) -> bool:
    """Whether a browser's Origin belongs to a site: its host is a registered domain or a
    subdomain of one (a domain registered with a port matches that port only). localhost
    and 127.0.0.1 get no favour: they pass only when the site registers them."""
    parts = urlsplit(origin)
    try:
        host, port = parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a malformed port
        return False
    if parts.scheme not in _DEFAULT_PORTS or not host:  # also the opaque origin "null"
        return False
    for domain in domains:
        name, _, want_port = domain.lower().partition(":")
        if want_port and int(want_port) != port:
            continue
        if host == name or (host.endswith("." + name) and not _is_ip(name)):
            return True
    return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def preflight(request: Request) -> Response:
    """A preflight carries no body, so the site is unknown here: allow the method and
    header to any origin, and judge the origin on the POST itself."""
    response = Response(status=204)
    origin = request.headers.get("Origin")
    if origin:
        response.headers.update(PREFLIGHT)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
    return response


def allow_reading(request: Request, response: Response) -> None:
    """The page may read every answer but a refused origin's (403): a judged origin's, and
    refusals that came before the origin could be judged (a malformed or too large body,
    an unknown site, 429, 503), so that the tracker drops a hopeless batch or backs off
    instead of retrying blind."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    response.vary.add("Origin")
    if response.status_code != 403:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"  # the tracker honours it

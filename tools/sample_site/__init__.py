"""The demo's sample site: a few static pages with the tracker on them, served on
127.0.0.1, so that a person can click around and watch their own visit arrive live.

The pages are templates: ``{{SITE}}``, ``{{COLLECTOR}}`` and ``{{SERVING}}`` are filled
in when the server starts. Clean URLs: ``/pricing`` serves ``pricing.html``.
"""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from store.registry import Registry
from views.goals import Goal

log = logging.getLogger(__name__)

PAGES_DIR = Path(__file__).resolve().parent
SITE_ID = "demo"
# The sample site's goals, as `parallax goal add` takes them.
GOALS = (("Signed up", "event", "signup"), ("Saw pricing", "page", "/pricing"),
         ("Read the blog", "page", "/blog/**"))
_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8"}


def load_pages(site: str, collector_url: str, serving_url: str) -> dict[str, tuple[bytes, str]]:
    """Every page by URL path (with and without ``.html``), filled in; read once, so that
    nothing outside this folder can be asked for."""
    pages: dict[str, tuple[bytes, str]] = {}
    for file in sorted(PAGES_DIR.rglob("*")):
        if file.suffix not in _TYPES:
            continue
        text = file.read_text().replace("{{SITE}}", site).replace("{{COLLECTOR}}", collector_url.rstrip("/"))
        body = (text.replace("{{SERVING}}", serving_url.rstrip("/"))).encode()
        path = "/" + file.relative_to(PAGES_DIR).as_posix()
        pages[path] = (body, _TYPES[file.suffix])
        if file.suffix == ".html":
            pages[path.removesuffix(".html")] = pages[path]
            if file.stem == "index":
                pages[path.removesuffix("index.html") or "/"] = pages[path]
    return pages


class SampleSite(ThreadingHTTPServer):
    """The pages on 127.0.0.1:``port`` (0: any free port), served from a thread."""

    daemon_threads = True

    def __init__(self, port: int, site: str, collector_url: str, serving_url: str) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.pages = load_pages(site, collector_url, serving_url)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, name="sample-site", daemon=True)

    def start(self) -> SampleSite:
        self._thread.start()
        log.info("sample site on %s", self.url)
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    server: SampleSite

    def do_GET(self) -> None:
        page = self.server.pages.get(self.path.split("?", 1)[0].split("#", 1)[0])
        body, ctype = page if page else (b"<!doctype html><title>Not found</title><p>Not found.", _TYPES[".html"])
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:  # no access log: it would hold the visitor's address
        pass


def register(registry: Registry, site: str = SITE_ID) -> None:
    """The sample site, admitted from pages on 127.0.0.1 and localhost (any port), with its goals."""
    registry.add_site(site, ["127.0.0.1", "localhost"], "UTC")
    for name, kind, pattern in GOALS:
        registry.add_goal(Goal(site, name, kind, pattern))

"""The tracker script, served from memory."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from flask import Request, Response

TRACKER = Path(__file__).with_name("static") / "tracker.js"


class StaticAsset:
    """A small file served from memory, gzipped when the client accepts it, with an ETag
    so that a cached copy is revalidated with a 304."""

    def __init__(self, path: Path, max_age: int = 3600) -> None:
        self.raw = path.read_bytes()
        self.gzipped = gzip.compress(self.raw, compresslevel=9, mtime=0)
        self.etag = hashlib.sha256(self.raw).hexdigest()[:20]
        self.max_age = max_age  # the tag's URL is not versioned: a new tracker reaches visitors within this

    def response(self, request: Request) -> Response:
        use_gzip = request.accept_encodings["gzip"] > 0
        response = Response(self.gzipped if use_gzip else self.raw, mimetype="text/javascript")
        if use_gzip:
            response.headers["Content-Encoding"] = "gzip"
        response.set_etag(self.etag + ("-gz" if use_gzip else ""))
        response.vary.add("Accept-Encoding")
        response.cache_control.public = True
        response.cache_control.max_age = self.max_age
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Access-Control-Allow-Origin"] = "*"  # lets a page use crossorigin + integrity
        return response.make_conditional(request)

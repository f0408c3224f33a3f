"""The collector's app factory: POST /api/collect (``collector.pipeline``), the tracker,
/health and /metrics (``collector.routes``)."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from collector import routes
from collector.enrichment import warm_up
from collector.resources import Health, Resources
from infra.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    c = settings.collector
    # One byte over the limit: werkzeug stops a chunked body (no Content-Length) at the limit
    # without an error, so a body that reaches limit + 1 is how an oversized one is told apart.
    app.config.update(MAX_CONTENT_LENGTH=c.max_body_bytes + 1)
    if test_config:
        app.config.update(test_config)
    if c.trusted_proxies:
        # Behind N proxies, the client is the Nth address from the right of X-Forwarded-For
        # (what a client sends itself sits further left and is ignored).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=c.trusted_proxies)  # type: ignore[method-assign]
    res = Resources(settings)
    log.info("collector: rate limits %s per address, %s per site (each worker counts its own); events over "
             "%.0f s ahead of this clock rejected, over %.0f s old counted late",
             c.rate_limit_ip, c.rate_limit_site, c.max_clock_skew_s, c.late_after_s)
    # At start rather than in the first request; a missing database is reported now.
    res.countries.open()
    warm_up()
    app.extensions["parallax.collector"] = res
    app.extensions["parallax.health"] = Health(settings)
    app.register_blueprint(routes.bp)
    app.register_error_handler(RequestEntityTooLarge, routes.body_too_large)
    return app

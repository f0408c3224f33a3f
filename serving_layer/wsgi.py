"""WSGI entry for a production server: ``gunicorn -w N --threads T serving_layer.wsgi:app``
(what `parallax serve` runs)."""
from infra.settings import load_settings
from serving_layer.app import create_app

app = create_app(load_settings())

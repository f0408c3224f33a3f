"""WSGI entry for a production server: ``gunicorn -w 1 --threads 64 serving_layer.wsgi:app``
(what `parallax serve` runs)."""
from infra.settings import load_settings
from serving_layer.app import create_app

app = create_app(load_settings())

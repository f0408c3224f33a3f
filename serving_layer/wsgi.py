"""WSGI entry for a production server: ``gunicorn -w 1 --threads 50 serving_layer.wsgi:app``."""
from serving_layer import create_app

app = create_app()

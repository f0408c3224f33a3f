"""WSGI entry for a production server: ``gunicorn -w 2 --threads 8 collector.wsgi:app``."""
from collector.app import create_app

app = create_app()

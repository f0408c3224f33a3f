"""WSGI entry for a production server: ``gunicorn -w 2 --threads 12 collector.wsgi:app``
(what `parallax collect` runs, with ``--config python:collector.gunicorn_conf`` for /metrics)."""
import logging

from collector.app import create_app
from infra.settings import load_settings

# gunicorn configures its own loggers only: without this, the collector's INFO lines (its
# settings at start, the country database) would go nowhere.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                    datefmt="%H:%M:%S")
logging.getLogger("cassandra").setLevel(logging.WARNING)
# A Kafka client logs every failed connection while Kafka is away (hundreds of lines a
# minute); the collector says it once every few seconds instead (collector.resources.OutageLog).
# Its producer is librdkafka's (quietened in collector.kafka_sink); kafka-python's logger too.
logging.getLogger("kafka").setLevel(logging.CRITICAL)

app = create_app(load_settings())

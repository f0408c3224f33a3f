"""The collector: ``app`` (the factory) and ``routes``; ``pipeline`` (POST /api/collect as
named steps) over ``events`` (the pure steps: parse, validate, enrich, filter) and
``reasons``; what the steps talk to (``resources``, ``registry``, ``ratelimit``,
``enrichment``, ``kafka_sink``); ``metrics``, ``cors``, ``assets``; ``wsgi`` and
``gunicorn_conf`` for gunicorn."""

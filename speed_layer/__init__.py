"""The speed layer: ``job`` (the recipe `parallax speed` runs), ``queries`` (the streaming
queries over Kafka `events`), ``checkpoints`` (their versions and starting points),
``sinks`` and ``sessions`` (what each micro-batch writes), ``session_sums`` (the running
session measures), ``progress`` (the dropped counts)."""

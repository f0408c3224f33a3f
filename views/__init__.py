"""The view catalogue, written once: ``catalogue`` (measures, dimensions, granularities,
time buckets), ``goals``, ``sketches`` (how visitor sketches merge), all plain Python; and
``transforms``, the pure DataFrame transforms both processing layers run. No I/O here."""

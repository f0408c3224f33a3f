"""The serving layer's routes, a blueprint each: ``reports`` (the merged reports) and
``diagnostics`` (drift, dropped events, health)."""

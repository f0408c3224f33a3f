"""Tools on top of the layers: ``generator`` (realistic traffic through the collector, with
its ground truth), ``demo`` and its ``sample_site``, ``synthetic`` (events for benches and
tests)."""

"""The `parallax` command: the roof of the house, the only package that imports every layer.

``main`` (the group, logging, settings) with one module per family of subcommands:
``stack``, ``sites`` (sites and goals), ``services`` (collector, speed layer, serving
layer, batch job), ``invalid`` (what the collector rejected), ``tools`` (demo, traffic
generator, live watch).
"""

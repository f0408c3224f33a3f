"""Benchmarks that print figures for BENCHMARKS.md: ``batch_bench``, ``speed_bench``,
``collector_bench``; their shared helpers are in ``common``."""

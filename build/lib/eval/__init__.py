"""Benchmarks and evaluations: ``python -m eval.cnceleb``, ``python -m eval.speakers``."""

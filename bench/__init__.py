"""Benchmarks, run by hand (`python -m bench.<name>`), never as tests: timings depend on the host.

Shared helpers (nearest-rank percentiles, tables, JSON results) live in `bench.common`.
"""

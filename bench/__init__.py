"""Benchmarks, run by hand, never as tests: timings depend on the host.

`python -m bench [--quick]` (or `trident bench`) runs the whole suite in one go and writes
bench/out/results.{json,md} and latency.png (see `bench.__main__`); single parts also run alone
(`python -m bench.<name>`). Shared helpers (nearest-rank percentiles, tables, JSON results) live
in `bench.common`; the processes a run starts in `bench.stack`.
"""

"""Magpie's benchmarks: cost per million messages, webhook latency, cold start, package size
and the local pipeline's throughput. `python -m bench.run` (what `make bench` runs) writes
bench/results/*.json and docs/PERFORMANCE.md. Benchmarks report figures; they are not tests.
"""

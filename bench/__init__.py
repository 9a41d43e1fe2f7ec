"""Benchmarks; results and how to reproduce them in docs/benchmarks.md."""

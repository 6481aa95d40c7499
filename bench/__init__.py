"""Benchmarks: each measures a baseline and ours in the same run and writes docs/benchmarks.md."""

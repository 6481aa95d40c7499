"""Distributed precomputation of fused SGM depth hints (built in a later issue)."""

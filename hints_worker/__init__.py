"""Hint precomputation at scale: a pool of matcher processes per node, Ray actors across a
cluster, pre-flight checks of the store, resume and fault tolerance."""

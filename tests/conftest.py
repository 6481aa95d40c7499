"""Test-wide settings."""

import torch

# The tests use tiny tensors: one intra-op thread avoids OpenMP spin-waiting on the 2-core CI
# machine (measured: tests/test_step.py 55 s with 2 threads, 15 s with 1).
torch.set_num_threads(1)

"""Helpers for testing hf_eff and code built on it (multi-process CPU runs)."""

from hf_eff.testing.distributed import DistributedWorkerError, free_port, run_distributed


__all__ = ["DistributedWorkerError", "free_port", "run_distributed"]

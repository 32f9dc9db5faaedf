"""Helpers for testing hf_eff and code built on it: multi-process CPU runs (``run_distributed``) and crash-resume
exactness (:mod:`hf_eff.testing.resume`, imported from there: it is also the worker script its jobs run)."""

from hf_eff.testing.distributed import DistributedWorkerError, free_port, run_distributed


__all__ = ["DistributedWorkerError", "free_port", "run_distributed"]

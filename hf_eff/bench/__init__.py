"""Benchmarks: one module per method, each registered with :func:`benchmark`; run by ``hf-eff bench``."""

from hf_eff.bench.meters import (
    PeakRSSMeter,
    SavedTensorsMeter,
    Timing,
    compare_timings,
    release_free_memory,
    saved_tensor_bytes,
    single_thread,
)
from hf_eff.bench.registry import BenchSettings, available_benchmarks, benchmark
from hf_eff.bench.report import BenchReport, Headline, markdown_table, write_report


__all__ = [
    "BenchReport",
    "BenchSettings",
    "Headline",
    "PeakRSSMeter",
    "SavedTensorsMeter",
    "Timing",
    "available_benchmarks",
    "benchmark",
    "compare_timings",
    "markdown_table",
    "release_free_memory",
    "saved_tensor_bytes",
    "single_thread",
    "write_report",
]

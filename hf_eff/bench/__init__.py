"""Benchmarks: one module per method, each registered with :func:`benchmark`; run by ``hf-eff bench``.

Public names are resolved lazily (PEP 562): ``hf-eff bench list`` imports :mod:`hf_eff.bench.registry` and
must not pay for torch, which :mod:`hf_eff.bench.meters` imports.
"""

import importlib
from typing import Any


_PUBLIC_NAMES = {
    "PeakAllocationMeter": "hf_eff.bench.meters",
    "PeakRSSMeter": "hf_eff.bench.meters",
    "SavedTensorsMeter": "hf_eff.bench.meters",
    "Timing": "hf_eff.bench.meters",
    "compare_timings": "hf_eff.bench.meters",
    "release_free_memory": "hf_eff.bench.meters",
    "saved_tensor_bytes": "hf_eff.bench.meters",
    "single_thread": "hf_eff.bench.meters",
    "BenchSettings": "hf_eff.bench.registry",
    "available_benchmarks": "hf_eff.bench.registry",
    "benchmark": "hf_eff.bench.registry",
    "BenchReport": "hf_eff.bench.report",
    "Headline": "hf_eff.bench.report",
    "markdown_table": "hf_eff.bench.report",
    "write_report": "hf_eff.bench.report",
}

__all__ = sorted(_PUBLIC_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC_NAMES[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC_NAMES))

"""The registry every method's benchmark plugs into.

A benchmark is a function ``run(settings: BenchSettings) -> BenchReport`` in a module of ``hf_eff.bench``,
decorated with :func:`benchmark`. Modules are discovered, so adding a method's benchmark means adding one file.
"""

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hf_eff.bench.report import BenchReport


SIZES = ("quick", "full")


@dataclass(frozen=True)
class BenchSettings:
    """What every benchmark is told. ``size="quick"`` must finish in well under a minute on a laptop CPU
    (``hf-eff tour`` and CI run it); ``"full"`` is the real measurement."""

    size: str = "quick"
    seed: int = 0
    output_dir: Path = Path("hf_eff_bench")
    device: str = "cpu"

    def __post_init__(self):
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {self.size!r}")

    @property
    def quick(self) -> bool:
        return self.size == "quick"


BenchFn = Callable[[BenchSettings], BenchReport]


@dataclass(frozen=True)
class Benchmark:
    name: str
    summary: str
    run: BenchFn


_BENCHMARKS: dict[str, Benchmark] = {}
_NON_BENCHMARK_MODULES = {"registry", "report", "meters", "runner", "training"}


def benchmark(name: str, summary: str) -> Callable[[BenchFn], BenchFn]:
    """Decorator registering ``fn`` as the benchmark of method ``name`` (the ``hf-eff bench NAME`` key)."""

    def decorate(fn: BenchFn) -> BenchFn:
        if name in _BENCHMARKS and _BENCHMARKS[name].run is not fn:
            raise ValueError(f"a benchmark named {name!r} is already registered")
        _BENCHMARKS[name] = Benchmark(name, summary, fn)
        return fn

    return decorate


def available_benchmarks() -> dict[str, Benchmark]:
    """All benchmarks, by name; imports every benchmark module of ``hf_eff.bench`` on first call."""
    import hf_eff.bench as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NON_BENCHMARK_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"hf_eff.bench.{info.name}")
    return dict(sorted(_BENCHMARKS.items()))

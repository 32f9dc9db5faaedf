"""The registry every method's benchmark plugs into.

A benchmark is a function ``run(settings: BenchSettings) -> BenchReport`` in a module of ``hf_eff.bench``,
decorated with :func:`benchmark`. Modules are discovered, so adding a method's benchmark means adding one file.
:func:`benchmark_summaries` reads the decorators from the sources instead of importing them, so that
``hf-eff bench list`` does not pay for importing every method (torch, transformers, OpenCV) just to print names.
"""

import ast
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


def _benchmark_modules() -> list[pkgutil.ModuleInfo]:
    import hf_eff.bench as package

    infos = pkgutil.iter_modules(package.__path__)
    return [i for i in infos if i.name not in _NON_BENCHMARK_MODULES and not i.name.startswith("_")]


def available_benchmarks() -> dict[str, Benchmark]:
    """All benchmarks, by name; imports every benchmark module of ``hf_eff.bench`` on first call."""
    for info in _benchmark_modules():
        importlib.import_module(f"hf_eff.bench.{info.name}")
    return dict(sorted(_BENCHMARKS.items()))


def _declared(decorator: ast.expr) -> tuple[str, str] | None:
    """``(name, summary)`` of a ``@benchmark(name, summary)`` decorator written with string literals."""
    if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == benchmark.__name__):
        return None
    arguments = dict(zip(("name", "summary"), decorator.args, strict=False))
    arguments.update({keyword.arg: keyword.value for keyword in decorator.keywords})
    values = [getattr(arguments.get(key), "value", None) for key in ("name", "summary")]
    if not all(isinstance(value, str) for value in values):
        raise ValueError(f"@benchmark arguments must be string literals: {ast.unparse(decorator)}")
    return values[0], values[1]


def benchmark_summaries() -> dict[str, str]:
    """Every benchmark's summary, by name, read from the ``@benchmark`` decorators in the benchmark modules'
    sources without importing them (the same names and summaries as :func:`available_benchmarks`)."""
    summaries = {}
    for info in _benchmark_modules():
        path = Path(info.module_finder.path) / f"{info.name}.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef):
                summaries.update(filter(None, map(_declared, node.decorator_list)))
    return dict(sorted(summaries.items()))


def check_benchmark_names(names: list[str]) -> None:
    """A ValueError naming the first unknown benchmark and listing the known ones; imports no benchmark, so that a
    typo on the command line is answered at once."""
    known = sorted({*benchmark_summaries(), *_BENCHMARKS})
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; available: {', '.join(known) or 'none yet'}")

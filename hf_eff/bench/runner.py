"""Run benchmarks for ``hf-eff bench`` and ``hf-eff tour``: seed, time-box, write reports, print the table."""

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_eff.bench.registry import Benchmark, BenchSettings, available_benchmarks, check_benchmark_names
from hf_eff.bench.report import BenchReport, markdown_table, write_report


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def select_benchmarks(names: list[str] | str) -> list[Benchmark]:
    """Benchmarks by name (``"all"`` for every one); a clear error lists the names that exist."""
    if names == "all" or names == ["all"]:
        return list(available_benchmarks().values())
    names = [names] if isinstance(names, str) else names
    check_benchmark_names(names)
    known = available_benchmarks()
    return [known[n] for n in names]


def run_one(bench: Benchmark, settings: BenchSettings) -> tuple[BenchReport, float]:
    seed_everything(settings.seed)
    start = time.perf_counter()
    report = bench.run(settings)
    report.meta.setdefault("size", settings.size)
    report.meta.setdefault("seed", settings.seed)
    write_report(report, settings.output_dir)
    return report, time.perf_counter() - start


def run_benchmarks(method: str, *, quick: bool, seed: int, output_dir: Path) -> list[BenchReport]:
    """``hf-eff bench METHOD|all``: run, write ``<method>.json/.md/.png`` and print each table."""
    benches = select_benchmarks(method)
    settings = BenchSettings(size="quick" if quick else "full", seed=seed, output_dir=Path(output_dir))
    reports = []
    for bench in tqdm(benches, desc="benchmarks", disable=len(benches) == 1):
        report, seconds = run_one(bench, settings)
        print(f"\n# {report.title}  ({seconds:.0f} s)\n")
        print(markdown_table(report.rows))
        print(f"written to {settings.output_dir / (report.method + '.md')}")
        reports.append(report)
    return reports


@contextmanager
def _heartbeat(progress: tqdm, name: str, every: float = 2.0) -> Iterator[None]:
    """While a method runs, show its name and the seconds it has taken so far on the tour's bar (redrawn every
    ``every`` s), so that minutes of work inside one benchmark do not look like a hang."""
    done = threading.Event()
    start = time.perf_counter()

    def tick() -> None:
        while not done.wait(every):
            progress.set_postfix_str(f"{name}: {time.perf_counter() - start:.0f} s")

    progress.set_postfix_str(f"{name}: 0 s")
    ticker = threading.Thread(target=tick, name=f"hf-eff tour {name}", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


def run_tour(*, seed: int, output_dir: Path, only: list[str] | None = None) -> list[dict]:
    """``hf-eff tour``: every available method at its quick size, one table of measured effects.

    A method that fails is reported in the table with its error and does not stop the tour.
    """
    benches = select_benchmarks(only) if only else list(available_benchmarks().values())
    output_dir = Path(output_dir)
    settings = BenchSettings(size="quick", seed=seed, output_dir=output_dir)
    if not benches:
        print("No method has landed yet: nothing to run. `hf-eff bench --help` lists benchmarks as they land.")
    rows = []
    progress = tqdm(benches, desc="hf-eff tour")
    for bench in progress:
        try:
            with _heartbeat(progress, bench.name):
                report, seconds = run_one(bench, settings)
        except Exception as error:  # the tour goes on; the table says what failed
            rows.append(
                {
                    "method": bench.name,
                    "effect": "failed",
                    "vs": "",
                    "measured": f"{type(error).__name__}: {error}",
                    "better": "",
                }
            )
            continue
        h = report.headline
        rows.append(
            {
                "method": bench.name,
                "effect": h.effect if h else report.title,
                "vs": h.baseline if h else "",
                "measured": h.format_value() if h else "see report",
                "better": h.better if h else "",
                "seconds": round(seconds, 1),
            }
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    (output_dir / "tour.md").write_text("# hf-eff tour\n\n" + table)
    (output_dir / "tour.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n" + table)
    print(f"Reports and plots: {output_dir}/")
    return rows

"""Benchmark results and the writer that turns them into ``<method>.json``, ``<method>.md`` and PNG plots."""

import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


BETTER = ("higher", "lower")


@dataclass
class Headline:
    """One row of the ``hf-eff tour`` table: what the method saves or gains against its baseline.

    ``better`` says which way the value is good, and is required: in one table, a memory saving of 3x (higher is
    better) and a loss 3x the best baseline's (lower is better) must not read alike."""

    effect: str  # e.g. "training memory (bytes saved for backward)"
    baseline: str  # e.g. "same network storing activations"
    value: float  # the measured ratio or difference
    unit: str = "x"  # "x" for ratios, or a unit such as "pp" / "%"
    note: str = ""
    better: str = field(kw_only=True)  # "higher" or "lower"

    def __post_init__(self):
        if self.better not in BETTER:
            raise ValueError(f"better must be one of {BETTER}, got {self.better!r}")

    def format_value(self) -> str:
        return f"{self.value:.3g}{self.unit}" if self.unit == "x" else f"{self.value:.3g} {self.unit}"


@dataclass
class BenchReport:
    """What a benchmark returns. ``rows`` become the Markdown table; ``figures`` maps a file stem to a
    matplotlib figure; ``meta`` holds settings (sizes, seeds, versions) needed to reproduce the numbers."""

    method: str
    title: str
    rows: list[dict[str, Any]]
    headline: Headline | None = None
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "title": self.title,
            "headline": None if self.headline is None else vars(self.headline),
            "rows": self.rows,
            "notes": self.notes,
            "meta": {**environment(), **self.meta},
        }


def environment() -> dict[str, str]:
    import torch

    from hf_eff import __version__

    return {
        "hf_eff": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "torch_threads": str(torch.get_num_threads()),
    }


def format_cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table; columns are the union of the rows' keys in first-seen order."""
    if not rows:
        return "_no rows_\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def write_report(report: BenchReport, output_dir: str | Path) -> dict[str, Path]:
    """Write ``<method>.json``, ``<method>.md`` and one PNG per figure (series made distinct by
    :func:`hf_eff.bench.plotting.distinguish_series`); return the paths written."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": output_dir / f"{report.method}.json", "md": output_dir / f"{report.method}.md"}
    paths["json"].write_text(json.dumps(report.to_json(), indent=2, default=_json_default) + "\n")

    md = [f"# {report.title}\n"]
    if report.headline is not None:
        h = report.headline
        md.append(f"**{h.effect}**: {h.format_value()} vs {h.baseline} ({h.better} is better). {h.note}\n")
    md.append(markdown_table(report.rows))
    for stem, figure in report.figures.items():
        png = output_dir / f"{report.method}_{stem}.png"
        from hf_eff.bench.plotting import distinguish_series

        distinguish_series(figure)  # every series distinct in colour and marker; legends readable
        figure.savefig(png, dpi=120, bbox_inches="tight")
        paths[stem] = png
        md.append(f"\n![{stem}]({png.name})\n")
        import matplotlib.pyplot as plt

        plt.close(figure)
    if report.notes:
        md.append("\n" + "\n".join(f"- {note}" for note in report.notes) + "\n")
    md.append("\n" + ", ".join(f"{k} {v}" for k, v in report.to_json()["meta"].items()) + "\n")
    paths["md"].write_text("\n".join(md))
    return paths

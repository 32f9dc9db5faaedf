import json
import time

import matplotlib.pyplot as plt
import pytest
import torch

from hf_eff.bench import (
    BenchReport,
    BenchSettings,
    Headline,
    PeakRSSMeter,
    SavedTensorsMeter,
    compare_timings,
    markdown_table,
    saved_tensor_bytes,
    write_report,
)


def test_saved_tensors_meter_counts_a_known_tensor_exactly():
    x = torch.randn(1000, requires_grad=True)  # 4,000 bytes
    with SavedTensorsMeter() as meter:
        (x * x).sum()  # mul saves both operands: the same storage, counted once
    assert meter.bytes == 1000 * 4


def test_saved_tensors_meter_excludes_parameters_and_counts_each_storage_once():
    linear = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64, dtype=torch.float32)
    with SavedTensorsMeter(exclude=linear.parameters()) as meter:
        hidden = linear(x)  # saves x (input) and the weight (excluded)
        hidden.exp().sum()  # exp saves its output: 8 x 32 floats
    assert meter.bytes == 8 * 64 * 4 + 8 * 32 * 4


def test_saved_tensor_bytes_in_float64():
    x = torch.randn(10, 10, dtype=torch.float64, requires_grad=True)
    assert saved_tensor_bytes(lambda: x.sin().sum()) == 100 * 8


@pytest.mark.skipif(not PeakRSSMeter.supported(), reason="needs /proc (Linux)")
def test_peak_rss_meter_sees_a_large_allocation():
    with PeakRSSMeter() as meter:
        block = torch.ones(50_000_000, dtype=torch.uint8)  # 50 MB, touched by the fill
        del block
    assert 45_000_000 <= meter.peak_bytes <= 80_000_000
    with PeakRSSMeter() as small:
        pass
    assert small.peak_bytes < 20_000_000  # reset between measurements


def test_compare_timings_reports_ratio_to_baseline():
    timings = compare_timings(
        {"fast": lambda: time.sleep(0.002), "slow": lambda: time.sleep(0.02)}, baseline="fast", repeats=3, warmup=0
    )
    assert timings["fast"].ratio == pytest.approx(1.0)
    assert timings["slow"].ratio > 3
    assert len(timings["slow"].times_s) == 3
    with pytest.raises(ValueError, match="baseline"):
        compare_timings({"a": lambda: None}, baseline="b")


def test_report_writer_writes_json_markdown_and_png(tmp_path):
    figure, axis = plt.subplots()
    axis.plot([1, 2, 3], [3, 1, 2])
    report = BenchReport(
        method="demo",
        title="Demo benchmark",
        rows=[{"variant": "a", "ratio": 2.5, "count": 12000}, {"variant": "b", "ratio": 1.25}],
        headline=Headline(effect="memory saved", baseline="storing", value=2.5, better="higher"),
        notes=["a note"],
        meta={"batch": 4},
        figures={"curve": figure},
    )
    paths = write_report(report, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["rows"][0] == {"variant": "a", "ratio": 2.5, "count": 12000}
    assert data["headline"]["value"] == 2.5 and data["meta"]["batch"] == 4 and "torch" in data["meta"]
    markdown = paths["md"].read_text()
    assert "| variant | ratio | count |" in markdown and "| a | 2.5 | 12,000 |" in markdown
    assert "memory saved" in markdown and "a note" in markdown and "(higher is better)" in markdown
    assert paths["curve"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_headline_must_say_which_direction_is_better():
    with pytest.raises(TypeError, match="better"):
        Headline(effect="loss", baseline="best fixed rate", value=3.0)
    with pytest.raises(ValueError, match="better must be one of"):
        Headline(effect="loss", baseline="best fixed rate", value=3.0, better="up")


def test_every_benchmark_headline_says_which_direction_is_better():
    """Read from the sources (running every benchmark is minutes); a loss ratio must not read as a saving."""
    import ast
    from pathlib import Path

    import hf_eff.bench as package
    from hf_eff.bench.registry import benchmark_summaries

    directions = {}
    for name in benchmark_summaries():
        tree = ast.parse((Path(package.__path__[0]) / f"{name}.py").read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Headline"]
        assert calls, name
        directions[name] = {k.value.value for c in calls for k in c.keywords if k.arg == "better"}
    assert directions["bandit_lr"] == {"lower"}  # final loss relative to the best fixed rate
    assert all(d == {"higher"} for name, d in directions.items() if name != "bandit_lr"), directions


def test_markdown_table_unions_columns():
    table = markdown_table([{"a": 1}, {"b": 2.0}])
    assert table.splitlines()[0] == "| a | b |"
    assert table.splitlines()[3] == "|  | 2 |"


def test_bench_settings_validates_size():
    assert BenchSettings().quick
    with pytest.raises(ValueError, match="size"):
        BenchSettings(size="huge")

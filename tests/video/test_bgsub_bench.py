"""The quick benchmark runs end to end and reports speed, masks, memory and matching cost (slow: ~1-2 min)."""

import pytest


@pytest.mark.slow
def test_quick_benchmark_reports_baselines_memory_and_matching_cost(tmp_path):
    from hf_eff.bench import BenchSettings, available_benchmarks, write_report

    report = available_benchmarks()["bgsub"].run(BenchSettings(size="quick", output_dir=tmp_path))
    speed = [r for r in report.rows if "size" in r]
    quality = [r for r in report.rows if "scene" in r]
    assert {"OpenCV MOG2", "two-video online (streaming)", "two-video windowed (two passes)"} <= {
        r["method"] for r in speed
    }
    assert all(r["fg_fps"] is None or r["fg_fps"] > 0 for r in speed)
    assert {"synthetic standard", "synthetic planar", "synthetic parallax"} <= {r["scene"] for r in quality}
    assert all(0 <= r["f1"] <= 1 for r in quality)
    assert {r["mode"] for r in report.meta["memory"]} == {"online", "windowed"}
    assert {r["matcher"] for r in report.meta["matching_cost"]} == {"windowed", "brute-force"}
    assert report.headline is not None and report.headline.value > 0
    paths = write_report(report, tmp_path)
    assert paths["bgsub"].exists()

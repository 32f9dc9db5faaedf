"""The quick benchmark runs end to end and reports its comparisons (slow: ~30 s)."""

import pytest


@pytest.mark.slow
def test_quick_benchmark_reports_baselines_and_matching_cost(tmp_path):
    from hf_eff.bench import BenchSettings, available_benchmarks, write_report

    report = available_benchmarks()["bgsub"].run(BenchSettings(size="quick", output_dir=tmp_path))
    methods = {row["method"] for row in report.rows}
    assert {"two-video (windowed)", "two-video (brute-force)", "OpenCV MOG2", "OpenCV KNN"} <= methods
    assert all(0 <= row["f1"] <= 1 for row in report.rows)
    cost = report.meta["matching_cost"]
    assert {r["matcher"] for r in cost} == {"windowed", "brute-force"}
    assert report.headline is not None and report.headline.value > 0
    paths = write_report(report, tmp_path)
    assert paths["matching_cost"].exists()

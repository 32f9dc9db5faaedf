"""The HD-CNN benchmark runs end to end at its quick size and reports every quantity it promises (slow: ~1 min)."""

import json

import pytest


@pytest.mark.slow
def test_quick_benchmark_reports_errors_costs_pq_and_hierarchy(tmp_path):
    from hf_eff.bench import BenchSettings, write_report
    from hf_eff.bench.hdcnn import run

    report = run(BenchSettings(size="quick", seed=0, output_dir=tmp_path))
    write_report(report, tmp_path)
    data = json.loads((tmp_path / "hdcnn.json").read_text())
    meta = data["meta"]
    assert set(meta["errors"]) == {"block_error", "flat_error", "hdcnn_error", "hdcnn_top1_error"}
    flops = meta["flops_per_image"]
    assert flops["hdcnn_top1"] < flops["hdcnn_full"] and flops["flat"] < flops["hdcnn_top1"]
    assert meta["pq"]["bytes_after"] < meta["pq"]["bytes_before"]
    assert sorted({j for group in meta["coarse_members"] for j in group}) == list(range(10))
    assert any("Goal" in note for note in data["notes"])

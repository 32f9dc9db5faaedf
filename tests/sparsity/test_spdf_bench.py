import math

import pytest


@pytest.mark.slow
def test_quick_benchmark_reports_every_row(tmp_path):
    from hf_eff.bench import BenchSettings, write_report
    from hf_eff.bench.spdf import run

    report = run(BenchSettings(size="quick", output_dir=tmp_path))
    runs = [row["run"] for row in report.rows]
    assert runs == ["s=0%", "s=50%", "s=75%", "dense iso-FLOP", "s=75% + LoRA"]
    by_run = {row["run"]: row for row in report.rows}
    assert by_run["s=75%"]["sparsity held"] == pytest.approx(0.75)
    # iso-FLOP row gets about the 75% run's FLOPs; sparse rows really save FLOPs
    assert by_run["dense iso-FLOP"]["pretrain FLOPs"] == pytest.approx(by_run["s=75%"]["pretrain FLOPs"], rel=0.1)
    assert by_run["s=0%"]["dense / run FLOPs"] == 1.0 < by_run["s=50%"]["dense / run FLOPs"]
    assert by_run["s=50%"]["dense / run FLOPs"] < by_run["s=75%"]["dense / run FLOPs"] == report.headline.value
    assert by_run["s=75%"]["revived masked weights"] > 0.9 and by_run["s=75% + LoRA"]["revived masked weights"] == 0
    assert all(math.isfinite(row["downstream ppl"]) for row in report.rows)
    paths = write_report(report, tmp_path)
    assert paths["json"].exists() and paths["downstream_gap"].exists()

import math

import pytest


@pytest.mark.slow
def test_quick_benchmark_reports_every_row(tmp_path, single_thread):
    from hf_eff.bench import BenchSettings, write_report
    from hf_eff.bench.spdf import QUICK, run

    report = run(BenchSettings(size="quick", output_dir=tmp_path))
    runs = ["s=0%", "s=50%", "s=75%", "dense iso-FLOP", "s=75% + LoRA"]
    assert [row["run"] for row in report.rows] == runs * len(QUICK["sizes"])
    sizes = list(dict.fromkeys(row["model"] for row in report.rows))
    assert len(sizes) == 3
    for size in sizes:
        by_run = {row["run"]: row for row in report.rows if row["model"] == size}
        assert by_run["s=75%"]["sparsity held"] == pytest.approx(0.75, abs=1e-3)
        # the same tokens per parameter at every size
        assert by_run["s=0%"]["pretrain tokens"] / by_run["s=0%"]["params"] == pytest.approx(
            QUICK["tokens_per_param"], rel=0.1
        )
        # iso-FLOP row gets about the 75% run's FLOPs; sparse rows really save FLOPs
        assert by_run["dense iso-FLOP"]["pretrain FLOPs"] == pytest.approx(by_run["s=75%"]["pretrain FLOPs"], rel=0.15)
        assert by_run["s=0%"]["dense / run FLOPs"] == 1.0 < by_run["s=50%"]["dense / run FLOPs"]
        assert by_run["s=50%"]["dense / run FLOPs"] < by_run["s=75%"]["dense / run FLOPs"]
        assert (
            by_run["s=75%"]["revived masked weights"] > 0.9 and by_run["s=75% + LoRA"]["revived masked weights"] == 0
        )
    assert all(math.isfinite(row["downstream ppl"]) and 0 <= row["ROUGE-L"] <= 1 for row in report.rows)
    assert not any("step time" in note and "x." in note for note in report.notes)  # not measured in quick
    paths = write_report(report, tmp_path)
    assert paths["json"].exists() and paths["downstream_gap"].exists()

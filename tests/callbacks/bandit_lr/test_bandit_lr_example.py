"""The example script and the benchmark run end to end (offline, CPU)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "bandit_lr" / "train_bandit_lr.py"


def run_example(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_example_help():
    result = run_example("--help")
    assert result.returncode == 0, result.stderr
    assert "--episode_steps" in result.stdout and "--backtrack" in result.stdout


def test_example_refuses_a_world_size_other_than_the_one_asked_for(tmp_path):
    result = run_example("--output_dir", str(tmp_path), "--expected_world_size", "2", "--max_steps", "2")
    assert result.returncode != 0 and "expected 2 processes; the launcher started 1" in result.stderr


def test_example_trains_checkpoints_and_resumes_with_the_same_bandit(tmp_path):
    common = ["--max_steps", "20", "--episode_steps", "5", "--save_steps", "10", "--output_dir", str(tmp_path)]
    first = run_example(*common, "--backtrack")
    assert first.returncode == 0, first.stderr[-3000:]
    final = next(line for line in first.stdout.splitlines() if line.startswith("final metrics:"))
    metrics = json.loads(final.removeprefix("final metrics:"))
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    trace = next(line for line in first.stdout.splitlines() if line.startswith("arms played"))

    resumed = run_example(*common, "--backtrack", "--resume_from_checkpoint", str(tmp_path / "checkpoint-10"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert next(line for line in resumed.stdout.splitlines() if line.startswith("arms played")) == trace


def test_example_keeps_max_steps_of_trajectory_with_keep_steps(tmp_path):
    result = run_example("--max_steps", "40", "--keep_steps", "--save_strategy", "no", "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    kept = next(line for line in result.stdout.splitlines() if line.startswith("kept steps:"))
    kept_steps, total = map(int, kept.removeprefix("kept steps:").split(" of "))
    assert total > 40 and kept_steps >= 40  # more only if a closing race was at an end of the grid


@pytest.mark.slow
def test_quick_benchmark_reports_every_fixed_rate_adadelta_and_the_bandit(tmp_path):
    pytest.importorskip("schedulefree")
    pytest.importorskip("prodigyopt")
    from hf_eff.bench import BenchSettings, write_report
    from hf_eff.bench.bandit_lr import BEST_COOLED, GRIDS, KEPT, run

    report = run(BenchSettings(size="quick", output_dir=tmp_path))
    names = [row["run"] for row in report.rows if row["task"] == "digits-mlp"]
    assert [f"fixed lr={lr:g}" for lr in GRIDS["SGD"]] == [name for name in names if name.startswith("fixed")]
    assert {"race", KEPT, BEST_COOLED, "schedule-free", "Adadelta", "Prodigy"} <= set(names)
    cooled = next(row for row in report.rows if row["task"] == "digits-mlp" and row["run"] == BEST_COOLED)
    assert cooled["cost (runs)"] == len(GRIDS["SGD"]) + 1  # the grid, then its best rate again with the cooldown
    kept = [row for row in report.rows if row["run"] == KEPT]
    assert all(row["kept steps / T"] >= 1 and row["cost (runs)"] > 1 for row in kept)  # T kept, exploration on top
    assert {row["task"] for row in report.rows} == {"digits-mlp", "bytes-lm", "digits-cnn"}
    assert report.headline.value > 0 and report.headline.better == "lower"
    paths = write_report(report, tmp_path)
    assert paths["selector_traces"].exists()

"""The example script: --help is cheap; a real run (slow) fits, evaluates and saves a loadable model."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "craftmaps" / "train_craftmaps.py"


def test_example_help():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    assert "--n_components" in result.stdout and "--push_to_hub" in result.stdout


@pytest.mark.slow
def test_example_fits_and_saves_a_loadable_model(tmp_path):
    args = ["--n_components", "128", "--max_train_samples", "600", "--output_dir", str(tmp_path)]
    subprocess.run([sys.executable, str(SCRIPT), *args], check=True, capture_output=True, text=True)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.9 and metrics["train_samples"] == 600
    from transformers import pipeline

    import hf_eff  # noqa: F401  (registers the task)

    classifier = pipeline("craftmaps-classification", model=str(tmp_path), device="cpu")
    assert len(classifier(np.ones(64, dtype=np.float32), top_k=2)) == 2


@pytest.mark.slow  # a subprocess (~10 s of imports); hf_eff.distributed.world_size_problem has fast tests
def test_example_stops_at_start_up_when_the_world_size_is_not_the_expected_one():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--expected_world_size", "2"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert "expected 2 processes; the launcher started 1" in result.stderr.strip().splitlines()[-1]

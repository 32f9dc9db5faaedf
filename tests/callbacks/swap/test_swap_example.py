"""The example script end to end in one process (two sequential workers) on the digits: it saves an averaged model
that the Auto classes load, with its SWAP model card."""

import importlib.util
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageClassification


EXAMPLE = Path(__file__).parents[3] / "examples" / "swap" / "train_swap.py"


@pytest.mark.slow  # about 15 s of CPU (imports, datasets, a ResNet); the features are covered by the fast tests
def test_example_single_process_saves_a_loadable_averaged_model(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("train_swap_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(
        [
            "--output_dir", str(tmp_path), "--dataset", "digits", "--num_workers", "2",
            "--max_train_samples", "256", "--max_eval_samples", "64", "--num_train_epochs", "1",
            "--per_device_train_batch_size", "64", "--phase2_batch_size", "16", "--phase2_epochs", "0.25",
            "--disable_tqdm", "true", "--logging_steps", "100",
        ]
    )  # fmt: skip
    assert "averaged model: eval accuracy" in capsys.readouterr().out
    saved = tmp_path / "swap_averaged"
    model = AutoModelForImageClassification.from_pretrained(saved)
    logits = model(pixel_values=torch.zeros(2, 1, 8, 8)).logits
    assert logits.shape == (2, 10)
    assert "trained with SWAP" in (saved / "README.md").read_text()

"""The training example runs end to end with Trainer (tiny synthetic BraTS run) and resumes from its checkpoint."""

import importlib.util
import json
from pathlib import Path

import pytest


def _example():
    path = Path(__file__).resolve().parents[3] / "examples" / "rev_unet3d" / "train_segmentation.py"
    spec = importlib.util.spec_from_file_location("train_segmentation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # two short Trainer runs (~10 s idle, ~30 s on a loaded 2-core machine)
def test_example_trains_evaluates_and_resumes(tmp_path, capsys):
    example = _example()
    common = [
        "--data", "synthetic", "--num_synthetic", "2", "--synthetic_size", "20", "--channels", "8,16", "--crop_size", "16",
        "--blocks_per_level", "1", "--samples_per_volume", "2", "--per_device_train_batch_size", "1",
        "--output_dir", str(tmp_path), "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no",
        "--disable_tqdm", "true", "--report_to", "none", "--dataloader_pin_memory", "false",
    ]  # fmt: skip
    example.main([*common, "--max_steps", "2"])
    out = capsys.readouterr().out
    assert "eval_dice_WT" in out and "whole held-out volume" in out
    assert (tmp_path / "checkpoint-2" / "model.safetensors").is_file()
    example.main([*common, "--max_steps", "3", "--resume_from_checkpoint", str(tmp_path / "checkpoint-2")])
    state = json.loads((tmp_path / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3


def test_world_size_mismatch_is_an_error(monkeypatch):
    example = _example()
    monkeypatch.setenv("WORLD_SIZE", "2")

    class Args:
        world_size = 1

    with pytest.raises(RuntimeError, match="started 2 processes but Trainer sees a world size of 1"):
        example.check_world_size(Args())

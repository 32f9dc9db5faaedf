import importlib.util
import json
from pathlib import Path

import pytest


def _example():
    path = Path(__file__).resolve().parents[2] / "examples" / "spdf" / "run_spdf.py"
    spec = importlib.util.spec_from_file_location("run_spdf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_parses_training_arguments_and_checks_the_world_size(tmp_path):
    example = _example()
    script, args = example.parse(["--output_dir", str(tmp_path), "--max_steps", "7", "--finetune_steps", "3"])
    assert args.max_steps == 7 and script.finetune_steps == 3 and args.adam_beta2 == 0.95  # recipe defaults kept
    # e.g. `accelerate launch --cpu --num_processes 2`, which starts one process
    with pytest.raises(SystemExit, match="expected 2 processes; the launcher started 1"):
        example.parse(["--output_dir", str(tmp_path), "--expected_world_size", "2"])


@pytest.mark.slow
def test_example_runs_end_to_end(tmp_path):
    argv = ["--output_dir", str(tmp_path), "--max_steps", "3", "--finetune_steps", "2", "--n_layer", "1"]
    argv += ["--n_embd", "32", "--n_head", "2", "--seq_len", "32", "--max_chars", "20000", "--sparsity", "0.5"]
    result = _example().main(argv)
    assert result["world_size"] == 1 and result["revived_fraction"] > 0
    assert json.loads((tmp_path / "results.json").read_text())["sparsity"] == 0.5
    assert (tmp_path / "sparse" / "sparsity_masks.safetensors").is_file()

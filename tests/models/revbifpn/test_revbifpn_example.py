"""The RevBiFPN example: every TrainingArguments flag parses, DDP is told no parameter is unused, and a run whose
world size is not the launcher's stops at start-up (exit 2, one line)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest


SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "revbifpn" / "train_classification.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("revbifpn_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trainer_flags_parse_over_the_script_defaults(example, tmp_path):
    args, training = example.parse_args(["--output_dir", str(tmp_path), "--logging_steps", "3", "--variant", "s1"])
    assert args.variant == "s1" and training.logging_steps == 3 and training.output_dir == str(tmp_path)
    assert training.ddp_find_unused_parameters is False and training.report_to in ("none", [], ["none"])
    assert training.learning_rate == pytest.approx(2e-3)  # a script default
    _, overridden = example.parse_args(["--ddp_find_unused_parameters", "true", "--learning_rate", "0.1"])
    assert overridden.ddp_find_unused_parameters is True and overridden.learning_rate == pytest.approx(0.1)


def test_a_world_size_other_than_the_expected_one_stops_at_start_up(example, capsys):
    with pytest.raises(SystemExit) as stopped:
        example.parse_args(["--expected_world_size", "2"])  # one process, as `accelerate launch --cpu` would start
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "expected 2 processes; the launcher started 1 and the training loop joined 1" in error
    assert "torchrun --nproc_per_node N" in error


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_cpu_processes_train_without_the_unused_parameters_warning(tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29647", str(SCRIPT),
        "--expected_world_size", "2", "--max_steps", "2", "--max_train_samples", "64", "--eval_strategy", "no",
        "--save_strategy", "no", "--per_device_eval_batch_size", "8", "--output_dir", str(tmp_path / "run"),
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world size 2" in result.stdout
    assert "find_unused_parameters=True" not in result.stderr
    assert (tmp_path / "run" / "model.safetensors").is_file()

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hf_eff.testing.distributed import free_port


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "instance_lr" / "train_noisy_labels.py"


@pytest.mark.slow
@pytest.mark.multiprocess
def test_example_under_torchrun_with_two_processes(tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        str(EXAMPLE), "--output_dir", str(tmp_path), "--max_steps", "8", "--save_steps", "4", "--horizon", "2",
        "--disable_tqdm", "true",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test accuracy:" in result.stdout and "AUROC of the rate" in result.stdout
    checkpoint = tmp_path / "checkpoint-4"
    assert {"instance_lr.safetensors", "instance_lr_rank0.safetensors", "instance_lr_rank1.safetensors"} <= {
        p.name for p in checkpoint.iterdir()
    }
    assert len((tmp_path / "rates.jsonl").read_text().splitlines()) == 1437

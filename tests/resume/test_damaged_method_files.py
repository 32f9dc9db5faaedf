"""SWAP's replica files and the per-instance rates file, cut short or damaged in a checkpoint, stop the resume with
one error naming the file; the method never starts afresh silently (a fresh phase-2 replica or fresh rates would
train on as if nothing happened)."""

import pytest
from method_recipes import instance_lr, swap


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _scribble_on_header(path):
    data = bytearray(path.read_bytes())
    data[8:40] = b"{not json at all" + b"!" * 16
    path.write_bytes(bytes(data))


# phase 1 = steps 1-4, worker 0 = steps 5-6, worker 1 = steps 7-8: checkpoint-6 holds every kind of SWAP file
@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("worker-1", _truncate),
        ("phase1-optimizer", _scribble_on_header),
        *[
            pytest.param(name, damage, marks=pytest.mark.slow)
            for name in ["worker-1", "worker-1-optimizer", "phase1", "phase1-optimizer", "worker-sum"]
            for damage in [_truncate, _scribble_on_header]
            if (name, damage) not in [("worker-1", _truncate), ("phase1-optimizer", _scribble_on_header)]
        ],
    ],
)
def test_a_damaged_swap_file_fails_naming_it(tmp_path, name, damage):
    trainer, _ = swap(str(tmp_path), phase2_steps=2, save_steps=6, max_steps=4)
    trainer.train()
    damage(tmp_path / "checkpoint-6" / "swap" / f"{name}.safetensors")
    resumed, _ = swap(str(tmp_path), phase2_steps=2, save_steps=6, max_steps=4)
    with pytest.raises(ValueError, match=rf"swap/{name}\.safetensors.*truncated or corrupted"):
        resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-6"))


def test_a_deleted_swap_optimizer_file_fails_naming_it(tmp_path):
    trainer, _ = swap(str(tmp_path), phase2_steps=2, save_steps=6, max_steps=4)
    trainer.train()
    (tmp_path / "checkpoint-6" / "swap" / "worker-1-optimizer.safetensors").unlink()
    resumed, _ = swap(str(tmp_path), phase2_steps=2, save_steps=6, max_steps=4)
    with pytest.raises(FileNotFoundError, match=r"swap/worker-1-optimizer\.safetensors"):
        resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-6"))


@pytest.mark.parametrize(
    ("file", "damage"),
    [
        ("instance_lr.safetensors", _truncate),
        ("instance_lr_rank0.safetensors", _scribble_on_header),  # the pending per-sample data
        pytest.param("instance_lr.safetensors", _scribble_on_header, marks=pytest.mark.slow),
        pytest.param("instance_lr_rank0.safetensors", _truncate, marks=pytest.mark.slow),
    ],
)
def test_a_damaged_rates_file_fails_naming_it(tmp_path, file, damage):
    trainer, _ = instance_lr(str(tmp_path), max_steps=2, save_steps=2)
    trainer.train()
    damage(tmp_path / "checkpoint-2" / file)
    resumed, _ = instance_lr(str(tmp_path), max_steps=3, save_steps=2)
    with pytest.raises(ValueError, match=rf"{file}.*truncated or corrupted"):
        resumed.train(resume_from_checkpoint=True)


@pytest.mark.parametrize("method", ["instance_lr", pytest.param("data_parameters", marks=pytest.mark.slow)])
def test_a_deleted_rates_file_fails_naming_it(tmp_path, method):
    trainer, _ = instance_lr(str(tmp_path), method=method, max_steps=2, save_steps=2)
    trainer.train()
    (tmp_path / "checkpoint-2" / f"{method}.safetensors").unlink()
    resumed, _ = instance_lr(str(tmp_path), method=method, max_steps=3, save_steps=2)
    with pytest.raises(FileNotFoundError, match=rf"{method}\.safetensors"):
        resumed.train(resume_from_checkpoint=True)

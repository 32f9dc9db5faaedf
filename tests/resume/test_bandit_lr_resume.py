"""BanditLRCallback resumes exactly: a run resumed from any checkpoint ends with the weights, optimizer state and
bandit state of the uninterrupted run, bit for bit on CPU, in every mode (in-process; the SIGKILL runs in fresh
processes are in ``test_crash_resume.py``)."""

import json

import pytest
import torch
from recipes import bandit_lr

from hf_eff.callbacks.bandit_lr import BanditLRCallback


SNAPSHOT_FILE = "bandit_lr_snapshot.safetensors"


def _bandit(trainer) -> BanditLRCallback:
    return next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, BanditLRCallback))


def _train(output_dir, resume=None, **options):
    trainer = bandit_lr(str(output_dir), **options)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


@pytest.mark.parametrize(
    ("mode", "backtrack", "checkpoint"),
    [
        ("absolute", False, 6),  # mid-episode (episodes of 4 steps)
        ("absolute", True, 6),
        pytest.param("multiplier", False, 6, marks=pytest.mark.slow),  # also in test_crash_resume.py
        ("multiplier", True, 6),
        pytest.param("absolute", False, 12, marks=pytest.mark.slow),  # at an episode boundary
        ("absolute", True, 12),
    ],
)
def test_resumed_run_is_bit_identical_to_the_uninterrupted_one(tmp_path, mode, backtrack, checkpoint):
    full = _train(tmp_path, mode=mode, backtrack=backtrack)
    resumed = _train(tmp_path, resume=str(tmp_path / f"checkpoint-{checkpoint}"), mode=mode, backtrack=backtrack)

    history = _bandit(full).history
    after = [record for record in history if record["global_step"] > checkpoint]
    assert len({record["arm"] for record in after}) > 1  # the resumed part plays several arms
    if backtrack:  # and, with backtracking, both keeps and undoes episodes
        assert {record["backtracked"] for record in after} == {True, False}
    assert _bandit(resumed).progress == _bandit(full).progress
    for name, tensor in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name
    for a, b in zip(full.optimizer.state_dict()["state"].values(), resumed.optimizer.state_dict()["state"].values()):
        assert all(torch.equal(a[key], b[key]) for key in a if isinstance(a[key], torch.Tensor))


def test_the_racing_selector_resumes_mid_race_with_the_arm_sequence_and_weights_of_the_uninterrupted_run(tmp_path):
    full = _train(tmp_path, bandit="race", save_steps=7)
    # inside the opening race's second branch (steps 5-8), in the last half it averages: the race's snapshot, its
    # best branch so far and the running average of the weights are saved
    checkpoint = tmp_path / "checkpoint-7"
    for name in (SNAPSHOT_FILE, "bandit_lr_best_branch.safetensors", "bandit_lr_tail_average.safetensors"):
        assert (checkpoint / name).is_file(), name
    resumed = _train(tmp_path, resume=str(checkpoint), bandit="race", save_steps=7)
    history = _bandit(full).history
    assert [record.get("branch") for record in history[:3]] == [0, 1, 2] and any(r.get("kept") for r in history)
    assert _bandit(resumed).arm_trace == _bandit(full).arm_trace
    assert _bandit(resumed).progress == _bandit(full).progress
    for name, tensor in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name


def test_the_episode_start_snapshot_is_saved_in_checkpoints_when_backtracking(tmp_path):
    _train(tmp_path, backtrack=True, max_steps=6)
    checkpoint = tmp_path / "checkpoint-6"
    assert (checkpoint / SNAPSHOT_FILE).is_file()
    progress = json.loads((checkpoint / "trainer_state.json").read_text())["stateful_callbacks"]
    assert progress["BanditLRCallback"]["attributes"]["progress"]["snapshot"] is True
    _train(tmp_path / "plain", max_steps=6)
    assert not (tmp_path / "plain" / "checkpoint-6" / SNAPSHOT_FILE).exists()  # nothing to save without it


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_snapshot_file_fails_naming_it(tmp_path, damage):
    _train(tmp_path, backtrack=True, max_steps=6)
    snapshot = tmp_path / "checkpoint-6" / SNAPSHOT_FILE
    if damage == "truncate":
        data = snapshot.read_bytes()
        snapshot.write_bytes(data[: len(data) // 2])
    else:
        snapshot.unlink()
    error = ValueError if damage == "truncate" else FileNotFoundError
    with pytest.raises(error, match=SNAPSHOT_FILE):
        _train(tmp_path, resume=str(tmp_path / "checkpoint-6"), backtrack=True, max_steps=8)


def test_a_checkpoint_copied_elsewhere_is_found_by_the_mixin_trainer(tmp_path):
    _train(tmp_path / "run", backtrack=True, max_steps=6, trainer="mixin")
    (tmp_path / "elsewhere").mkdir()
    moved = (tmp_path / "run" / "checkpoint-6").rename(tmp_path / "elsewhere" / "my-checkpoint")
    with pytest.raises(FileNotFoundError, match="resume with BanditLRTrainer"):  # a plain Trainer cannot tell
        _train(tmp_path / "run", resume=str(moved), backtrack=True, max_steps=8)
    resumed = _train(tmp_path / "run", resume=str(moved), backtrack=True, max_steps=8, trainer="mixin")
    assert resumed.state.global_step == 8

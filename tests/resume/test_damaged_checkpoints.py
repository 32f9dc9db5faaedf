"""A checkpoint whose method state is cut short or damaged stops the resume with one error naming the file; it
never starts that state afresh silently (fresh SPDF masks would zero trained weights)."""

import json

import pytest
from recipes import bandit_lr, spdf

from hf_eff.callbacks._state_file import load_state_file, save_state_file
from hf_eff.sparsity.checkpointing import MASKS_FILENAME


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _scribble_on_header(path):
    data = bytearray(path.read_bytes())
    data[8:40] = b"{not json at all" + b"!" * 16
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _scribble_on_header])
def test_damaged_spdf_masks_fail_naming_the_file(tmp_path, damage):
    trainer, _ = spdf(str(tmp_path), max_steps=2, save_steps=2)
    trainer.train()
    masks = tmp_path / "checkpoint-2" / MASKS_FILENAME
    damage(masks)
    resumed, _ = spdf(str(tmp_path), max_steps=3, save_steps=2)
    with pytest.raises(ValueError, match=f"{MASKS_FILENAME}.*truncated or corrupted"):
        resumed.train(resume_from_checkpoint=True)


def test_damaged_bandit_state_in_trainer_state_fails_clearly(tmp_path):
    bandit_lr(str(tmp_path), max_steps=2, save_steps=2).train()
    state_file = tmp_path / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["stateful_callbacks"]["BanditLRCallback"]["attributes"]["progress"]["history"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="BanditLRCallback progress must have the keys"):
        bandit_lr(str(tmp_path), max_steps=3, save_steps=2).train(resume_from_checkpoint=True)


def test_a_truncated_trainer_state_is_named_by_the_hf_eff_trainers(tmp_path):
    bandit_lr(str(tmp_path), max_steps=2, save_steps=2, trainer="mixin").train()
    _truncate(tmp_path / "checkpoint-2" / "trainer_state.json")
    with pytest.raises(ValueError, match="trainer_state.json is truncated or corrupted"):
        bandit_lr(str(tmp_path), max_steps=3, save_steps=2, trainer="mixin").train(resume_from_checkpoint=True)


def test_state_files_round_trip_exactly_and_refuse_damage(tmp_path):
    import torch

    optimizer_like = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4)}, 1: {"momentum_buffer": None}},
        "param_groups": [{"lr": 0.1 / 3, "betas": (0.9, 0.999), "params": [0, 1], "nan": float("nan")}],
        "__tensor__": "a key that looks like a tag",
    }
    shared = torch.randn(3)
    path = tmp_path / "state.safetensors"
    save_state_file(path, {"optimizer": optimizer_like, "tied": [shared, shared]}, metadata={"step": "3"})
    loaded, metadata = load_state_file(path)
    assert metadata["step"] == "3" and not (tmp_path / "state.safetensors.partial").exists()
    state, group = loaded["optimizer"]["state"], loaded["optimizer"]["param_groups"][0]
    assert set(state) == {0, 1} and state[1] == {"momentum_buffer": None}
    assert torch.equal(state[0]["exp_avg"], optimizer_like["state"][0]["exp_avg"])
    assert state[0]["step"].shape == () and state[0]["step"].item() == 3.0
    assert group["lr"] == 0.1 / 3 and group["betas"] == (0.9, 0.999) and group["nan"] != group["nan"]
    assert loaded["optimizer"]["__tensor__"] == "a key that looks like a tag"
    assert all(torch.equal(tensor, shared) for tensor in loaded["tied"])
    with pytest.raises(TypeError, match="cannot store a object at '/bad'"):
        save_state_file(tmp_path / "bad.safetensors", {"bad": object()})
    _truncate(path)
    with pytest.raises(ValueError, match="state.safetensors.*truncated or corrupted"):
        load_state_file(path)
